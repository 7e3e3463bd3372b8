'use strict';
'require view';
'require dom';
'require ui';
'require aerie';

// Pair this router with the VM (a code from `aerie-cloud pair`), or unpair it.

return view.extend({
	load: function() {
		return aerie.callStatus().catch(function(err) { return err; });
	},

	refresh: function() {
		var root = this.root;
		return this.load().then(L.bind(function(st) {
			dom.content(root, this.renderBody(st));
		}, this));
	},

	handlePair: function(input) {
		var code = input.value.trim();

		if (code == '') {
			ui.addNotification(null, E('p', {}, [ _('Paste the pairing code first.') ]), 'warning');
			return Promise.resolve();
		}

		return aerie.callPair(code).then(L.bind(function(res) {
			input.value = '';
			ui.addNotification(null, E('p', {}, [
				_('Paired as %s with the VM at %s.').format(res.name, res.vm)
			]), 'info');
			return this.refresh();
		}, this), aerie.notifyFailure('pair', _('Pairing failed')));
	},

	handleUnpair: function() {
		aerie.confirmCall({
			title: _('Unpair this router?'),
			text: _('The tunnel is removed and this router forgets the VM. To use it again, pair it with a new code from the VM.'),
			button: _('Unpair'),
			call: aerie.callUnpair,
			method: 'unpair',
			failure: _('Unpairing failed'),
			done: L.bind(this.refresh, this)
		});
	},

	renderBody: function(st) {
		if (st instanceof Error)
			return E('div', { 'class': 'alert-message warning' }, [
				_('The Aerie daemon does not answer: %s').format(st.message)
			]);

		if (st.state != 'unpaired')
			return E('div', { 'class': 'cbi-section' }, [
				E('p', {}, [ _('This router is paired as %s.').format(st.name || '?') ]),
				E('button', {
					'class': 'btn cbi-button-negative',
					'click': ui.createHandlerFn(this, 'handleUnpair')
				}, [ _('Unpair') ])
			]);

		var input = E('input', {
			'type': 'text',
			'class': 'cbi-input-text',
			'style': 'width: 100%',
			'autocomplete': 'off',
			'spellcheck': 'false',
			'placeholder': _('Pairing code')
		});

		return E('div', { 'class': 'cbi-section' }, [
			E('p', {}, [ _('On the VM, run aerie-cloud pair and paste the code it prints here. The code works once and only for a short time.') ]),
			E('div', { 'class': 'cbi-value' }, [ input ]),
			E('button', {
				'class': 'btn cbi-button-action',
				'click': ui.createHandlerFn(this, 'handlePair', input)
			}, [ _('Pair') ])
		]);
	},

	render: function(st) {
		this.root = E('div', {}, [ this.renderBody(st) ]);

		return E('div', {}, [
			E('h2', {}, [ _('Aerie pairing') ]),
			this.root
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
