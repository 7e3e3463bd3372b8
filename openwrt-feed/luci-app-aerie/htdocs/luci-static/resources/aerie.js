'use strict';
'require baseclass';
'require rpc';
'require ui';

// What the Aerie views share (`'require aerie'`): the one declaration of each
// method of the daemon's `aerie` ubus object (reads, then writes, as the ACL
// grants them), how a failed call is explained to the user, and the dialog
// that asks before a call that cannot be undone.

var callStatus = rpc.declare({ object: 'aerie', method: 'status', reject: true });
var callSettings = rpc.declare({ object: 'aerie', method: 'settings', reject: true });
var callDevices = rpc.declare({ object: 'aerie', method: 'devices', expect: { devices: [] }, reject: true });
var callPair = rpc.declare({ object: 'aerie', method: 'pair', params: [ 'code' ], reject: true });
var callUnpair = rpc.declare({ object: 'aerie', method: 'unpair', reject: true });
var callSet = rpc.declare({ object: 'aerie', method: 'set', params: [ 'key', 'value' ], reject: true });
var callDeviceAdd = rpc.declare({ object: 'aerie', method: 'device_add', params: [ 'name', 'role' ], reject: true });
var callDeviceRemove = rpc.declare({ object: 'aerie', method: 'device_remove', params: [ 'name' ], reject: true });

// ubus hands back only a status code; the daemon keeps the reason in status.last_error.
function explain(method, err) {
	return callStatus().then(function(st) {
		var last = st ? st.last_error : null;
		return (last && last.method == method) ? last.message : err.message;
	}).catch(function() {
		return err.message;
	});
}

// A rejection handler: the notification titled `title` says why `method` failed.
function notifyFailure(method, title) {
	return function(err) {
		return explain(method, err).then(function(message) {
			ui.addNotification(title, E('p', {}, [ message ]), 'error');
		});
	};
}

// Asks before a call that cannot be undone: opts.title, opts.text, Cancel and
// opts.button. Once opts.call succeeds, opts.done (the view's refresh); if it
// fails, why, as notifyFailure(opts.method, opts.failure) tells it.
function confirmCall(opts) {
	ui.showModal(opts.title, [
		E('p', {}, [ opts.text ]),
		E('div', { 'class': 'right' }, [
			E('button', { 'class': 'btn', 'click': ui.hideModal }, [ _('Cancel') ]),
			' ',
			E('button', {
				'class': 'btn cbi-button-negative',
				'click': ui.createHandlerFn(opts, function() {
					return opts.call().then(function() {
						ui.hideModal();
						return opts.done();
					}, function(err) {
						ui.hideModal();
						return notifyFailure(opts.method, opts.failure)(err);
					});
				})
			}, [ opts.button ])
		])
	]);
}

return baseclass.extend({
	callStatus: callStatus,
	callSettings: callSettings,
	callDevices: callDevices,
	callPair: callPair,
	callUnpair: callUnpair,
	callSet: callSet,
	callDeviceAdd: callDeviceAdd,
	callDeviceRemove: callDeviceRemove,
	notifyFailure: notifyFailure,
	confirmCall: confirmCall
});
