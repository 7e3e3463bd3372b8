'use strict';
'require view';
'require dom';
'require poll';
'require aerie';

// What the daemon knows about the tunnel, refreshed every 5 seconds.

var STATES = {
	up: _('Connected'),
	connecting: _('Connecting'),
	down: _('Down'),
	disabled: _('Disabled'),
	unpaired: _('Not paired')
};

var CONTROL = {
	connected: _('Connected'),
	connecting: _('Connecting'),
	off: _('Off')
};

function ago(seconds) {
	if (seconds == null)
		return _('Never');
	if (seconds < 120)
		return _('%d seconds ago').format(seconds);
	if (seconds < 7200)
		return _('%d minutes ago').format(Math.round(seconds / 60));
	return _('%d hours ago').format(Math.round(seconds / 3600));
}

// Configured and active can differ: the kernel state outlives the daemon.
function switchText(sw) {
	if (!sw)
		return '-';
	if (sw.configured && sw.active)
		return _('On');
	if (!sw.configured && !sw.active)
		return _('Off');
	if (sw.configured)
		return _('Configured on, but not active');
	return _('Still active, though configured off');
}

function dnsText(dns) {
	if (!dns)
		return _('No counters from the VM');
	return _('%d queries, %d blocked, %d answered from the cache').format(dns.queries, dns.blocked, dns.cached);
}

function row(label, value) {
	return E('tr', { 'class': 'tr' }, [
		E('td', { 'class': 'td left', 'width': '33%' }, [ label ]),
		E('td', { 'class': 'td left' }, [ value ])
	]);
}

function renderRows(st) {
	var rows = [ row(_('Tunnel'), STATES[st.state] || st.state) ];

	if (st.state != 'unpaired') {
		rows.push(
			row(_('Router name'), st.name || '-'),
			row(_('VM endpoint'), st.endpoint || '-'),
			row(_('Last handshake'), ago(st.handshake_age)),
			row(_('Data received'), '%1024mB'.format(st.rx_bytes || 0)),
			row(_('Data sent'), '%1024mB'.format(st.tx_bytes || 0)),
			row(_('Kill switch'), switchText(st.kill_switch)),
			row(_('DNS interception'), switchText(st.dns_intercept)),
			row(_('Egress address'), st.egress || '-'),
			row(_('Isolated devices'), (st.isolated || []).length ? st.isolated.join(', ') : _('none')),
			row(_('DNS on the VM'), dnsText(st.dns)),
			row(_('Control channel (MQTT)'), CONTROL[st.control] || st.control || '-')
		);
	}

	(st.warnings || []).forEach(function(w) {
		rows.push(row(_('Warning'), E('strong', {}, [ w ])));
	});

	if (st.last_error)
		rows.push(row(_('Last failed action'), '%s: %s'.format(st.last_error.method, st.last_error.message)));

	return E('table', { 'class': 'table' }, rows);
}

function renderFailure(err) {
	return E('div', { 'class': 'alert-message warning' }, [
		E('p', {}, [ _('The Aerie daemon does not answer: %s').format(err.message) ]),
		E('p', {}, [ _('Check that it runs: /etc/init.d/aerie status, and its log: logread -e aerie.') ])
	]);
}

function refresh(box) {
	return aerie.callStatus().then(function(st) {
		dom.content(box, renderRows(st));
	}, function(err) {
		dom.content(box, renderFailure(err));
	});
}

return view.extend({
	load: function() {
		return aerie.callStatus().catch(function(err) { return err; });
	},

	render: function(st) {
		var box = E('div', { 'class': 'cbi-section' }, [
			(st instanceof Error) ? renderFailure(st) : renderRows(st)
		]);

		poll.add(function() { return refresh(box); }, 5);

		return E('div', {}, [
			E('h2', {}, [ _('Aerie status') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('The tunnel that carries this home network to your VM.')
			]),
			box
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
