'use strict';
'require view';
'require form';
'require ui';
'require tools.widgets as widgets';
'require aerie';

// Two kinds of switches: this router's live in UCI (/etc/config/aerie) and are
// saved the OpenWrt way (Save & Apply); the VM's go to the VM through `aerie set`.

function sameList(a, b) {
	return a.length == b.length && a.every(function(x, i) { return x == b[i]; });
}

return view.extend({
	load: function() {
		return aerie.callSettings().catch(function(err) { return err; });
	},

	// One key at a time, in order: the first refusal stops the rest.
	handleVmApply: function(vm, w) {
		var blocking = (w.blocking.getValue() == '1'),
		    blockMode = w.blockMode.getValue(),
		    upstreams = w.upstreams.getValue().filter(function(u) { return u.trim() != ''; }),
		    steps = [];

		// Each key is remembered as applied once the VM took it, so a retry sends only the rest.
		if (blocking != !!vm.blocking)
			steps.push(function() {
				return aerie.callSet('blocking', blocking).then(function() { vm.blocking = blocking; });
			});
		if (blockMode != vm.blockMode)
			steps.push(function() {
				return aerie.callSet('blockMode', blockMode).then(function() { vm.blockMode = blockMode; });
			});
		if (!sameList(upstreams, vm.upstreams || []))
			steps.push(function() {
				return aerie.callSet('upstreams', upstreams).then(function() { vm.upstreams = upstreams; });
			});

		if (!steps.length) {
			ui.addNotification(null, E('p', {}, [ _('Nothing changed.') ]), 'info');
			return Promise.resolve();
		}

		return steps.reduce(function(done, step) {
			return done.then(step);
		}, Promise.resolve()).then(function() {
			ui.addNotification(null, E('p', {}, [ _('The VM applied the new settings.') ]), 'info');
		}, aerie.notifyFailure('set', _('Changing the VM\'s settings failed')));
	},

	renderVm: function(vm) {
		var head = E('h3', {}, [ _('On the VM') ]);

		if (vm instanceof Error)
			return E('div', { 'class': 'cbi-section' }, [
				head,
				E('div', { 'class': 'alert-message warning' }, [
					_('The VM\'s settings cannot be read (is the router paired and the tunnel up?): %s').format(vm.message)
				])
			]);

		var w = {
			blocking: new ui.Checkbox(vm.blocking ? '1' : '0', { value_enabled: '1', value_disabled: '0' }),
			blockMode: new ui.Select(vm.blockMode, {
				'null': _('Answer 0.0.0.0 and ::'),
				'nxdomain': _('Answer that the name does not exist (NXDOMAIN)')
			}),
			upstreams: new ui.DynamicList(vm.upstreams || [], null, { placeholder: 'udp:127.0.0.1' })
		};

		function field(title, widget, help) {
			return E('div', { 'class': 'cbi-value' }, [
				E('label', { 'class': 'cbi-value-title' }, [ title ]),
				E('div', { 'class': 'cbi-value-field' }, [
					widget.render(),
					E('div', { 'class': 'cbi-value-description' }, [ help ])
				])
			]);
		}

		return E('div', { 'class': 'cbi-section' }, [
			head,
			E('div', { 'class': 'cbi-section-descr' }, [
				_('These switches live on the VM; they take effect as soon as the VM accepts them.')
			]),
			field(_('Block ads and trackers'), w.blocking,
				_('The VM\'s blocklists apply to every device of this home network.')),
			field(_('Blocked names'), w.blockMode,
				_('What the VM\'s resolver answers for a blocked name.')),
			field(_('Upstream resolvers'), w.upstreams,
				_('In order of preference, such as udp:127.0.0.1 (the VM\'s own recursive resolver) or dot:dns.example@192.0.2.1.')),
			E('button', {
				'class': 'btn cbi-button-apply',
				'click': ui.createHandlerFn(this, 'handleVmApply', vm, w)
			}, [ _('Apply on the VM') ])
		]);
	},

	render: function(vm) {
		var m, s, o;

		m = new form.Map('aerie', _('Aerie settings'),
			_('The switches of this router take effect with Save & Apply.'));

		s = m.section(form.NamedSection, 'main', 'aerie', _('On this router'));
		s.addremove = false;

		// The switches: on unless UCI says off, and always written.
		[
			s.option(form.Flag, 'enabled', _('Enable'),
				_('Keep the tunnel to the VM up and send this home network through it.')),
			s.option(form.Flag, 'kill_switch', _('Kill switch'),
				_('While the tunnel is down, the home network gets no internet at all instead of going out directly.')),
			s.option(form.Flag, 'dns_intercept', _('Intercept DNS'),
				_('All DNS from the home network is answered by this router, through the VM; DNS over TLS and QUIC to elsewhere is refused.')),
			s.option(form.Flag, 'home_assistant', _('Home Assistant'),
				_('Announce this router to Home Assistant on the VM\'s MQTT broker (tunnel, kill switch, blocked queries).'))
		].forEach(function(flag) {
			flag.default = flag.enabled;
			flag.rmempty = false;
		});

		o = s.option(widgets.NetworkSelect, 'lan_network', _('Home networks'),
			_('The networks whose hosts go through the tunnel.'));
		o.multiple = true;
		o.nocreate = true;
		o.default = 'lan';
		o.rmempty = false;

		return m.render().then(L.bind(function(node) {
			return E('div', {}, [ node, this.renderVm(vm) ]);
		}, this));
	}
});
