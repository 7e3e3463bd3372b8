'use strict';
'require view';
'require dom';
'require ui';
'require aerie';

// The devices the VM knows (phones, laptops: their own WireGuard tunnels), and
// adding one: the VM makes its keys, the daemon renders the QR code.

// The VM's rule for device names: they become DNS labels.
var NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function handshakeText(ts) {
	if (!ts)
		return _('Never');
	return new Date(ts * 1000).toLocaleString();
}

return view.extend({
	load: function() {
		return aerie.callDevices().catch(function(err) { return err; });
	},

	refresh: function() {
		var list = this.list;
		return this.load().then(L.bind(function(devices) {
			dom.content(list, this.renderList(devices));
		}, this));
	},

	handleRemove: function(name) {
		aerie.confirmCall({
			title: _('Remove %s?').format(name),
			text: _('The device loses its tunnel to the VM at once. To connect it again, add it anew.'),
			button: _('Remove'),
			call: function() { return aerie.callDeviceRemove(name); },
			method: 'device_remove',
			failure: _('Removing the device failed'),
			done: L.bind(this.refresh, this)
		});
	},

	handleAdd: function(nameInput, roleSelect) {
		var name = nameInput.value.trim(),
		    role = roleSelect.value;

		if (name.length > 32 || !NAME_RE.test(name)) {
			ui.addNotification(null, E('p', {}, [
				_('A device name has 1 to 32 lower-case letters, digits and inner dashes, like living-room.')
			]), 'warning');
			return Promise.resolve();
		}

		return aerie.callDeviceAdd(name, role).then(L.bind(function(res) {
			nameInput.value = '';
			this.showConfig(res);
			return this.refresh();
		}, this), aerie.notifyFailure('device_add', _('Adding the device failed')));
	},

	// The config holds the device's private key: shown once, dropped from the page on close.
	showConfig: function(res) {
		var text = E('textarea', {
			'class': 'cbi-input-textarea',
			'readonly': 'readonly',
			'wrap': 'off',
			'rows': 12,
			'style': 'width: 100%; font-family: monospace'
		});
		text.value = res.config;

		var url = URL.createObjectURL(new Blob([ res.config ], { type: 'text/plain' }));
		var qr = E('img', {
			// An <img> cannot run script, whatever the SVG holds.
			'src': 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(res.qr_svg || ''),
			'alt': _('QR code of the configuration'),
			'style': 'width: 100%; max-width: 320px; background: #fff; padding: 8px'
		});

		ui.showModal(_('Device %s added').format(res.name), [
			E('div', { 'class': 'alert-message warning' }, [
				_('This configuration holds the private key of the device and is shown only this once. Scan the QR code with the WireGuard app or save the file now; anyone who has it can use this device\'s place in your network.')
			]),
			E('div', { 'style': 'text-align: center' }, [ qr ]),
			text,
			E('div', { 'class': 'right' }, [
				E('a', { 'class': 'btn', 'href': url, 'download': res.name + '.conf' }, [ _('Download') ]),
				' ',
				E('button', {
					'class': 'btn cbi-button-action',
					'click': function() {
						text.value = '';
						qr.removeAttribute('src');
						URL.revokeObjectURL(url);
						ui.hideModal();
					}
				}, [ _('Done') ])
			])
		]);
	},

	renderList: function(devices) {
		if (devices instanceof Error)
			return E('div', { 'class': 'alert-message warning' }, [
				_('The devices cannot be read: %s').format(devices.message)
			]);

		var rows = [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, [ _('Name') ]),
				E('th', { 'class': 'th' }, [ _('Role') ]),
				E('th', { 'class': 'th' }, [ _('Addresses') ]),
				E('th', { 'class': 'th' }, [ _('Last handshake') ]),
				E('th', { 'class': 'th cbi-section-actions' }, [ '' ])
			])
		];

		devices.forEach(L.bind(function(d) {
			rows.push(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, [ d.name ]),
				E('td', { 'class': 'td' }, [ d.role ]),
				E('td', { 'class': 'td' }, [ (d.addresses || []).join(', ') ]),
				E('td', { 'class': 'td' }, [ handshakeText(d.lastHandshake) ]),
				E('td', { 'class': 'td cbi-section-actions' }, [
					// The routers themselves are paired and unpaired, not removed here.
					(d.role == 'gateway') ? '' : E('button', {
						'class': 'btn cbi-button-remove',
						'click': ui.createHandlerFn(this, 'handleRemove', d.name)
					}, [ _('Remove') ])
				])
			]));
		}, this));

		if (!devices.length)
			rows.push(E('tr', { 'class': 'tr placeholder' }, [
				E('td', { 'class': 'td' }, [ E('em', {}, [ _('No devices yet.') ]) ])
			]));

		return E('table', { 'class': 'table' }, rows);
	},

	render: function(devices) {
		var nameInput = E('input', {
			'type': 'text',
			'class': 'cbi-input-text',
			'maxlength': 32,
			'placeholder': _('phone')
		});
		var roleSelect = E('select', { 'class': 'cbi-input-select' }, [
			E('option', { 'value': 'member' }, [ _('Member: uses the tunnel, may not change settings') ]),
			E('option', { 'value': 'owner' }, [ _('Owner: may also change settings and devices') ])
		]);

		this.list = E('div', { 'class': 'cbi-section' }, [ this.renderList(devices) ]);

		return E('div', {}, [
			E('h2', {}, [ _('Aerie devices') ]),
			this.list,
			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, [ _('Add a device') ]),
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ _('Name') ]),
					E('div', { 'class': 'cbi-value-field' }, [ nameInput ])
				]),
				E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ _('Role') ]),
					E('div', { 'class': 'cbi-value-field' }, [ roleSelect ])
				]),
				E('button', {
					'class': 'btn cbi-button-add',
					'click': ui.createHandlerFn(this, 'handleAdd', nameInput, roleSelect)
				}, [ _('Add') ])
			])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
