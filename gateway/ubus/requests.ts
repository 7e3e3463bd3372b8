// The frames our client sends, as (type, peer, attributes); the connection
// adds seq. Attribute order follows libubus, as recorded in the ubus vectors:
// the conformance test rebuilds every recorded client frame with these.
import { encodeNodes, encodeTable, signatureNodes } from './blobmsg.ts';
import { MSG, type UbusAttrs } from './message.ts';
import type { UbusTable } from './types.ts';

export interface Outgoing {
  type: number;
  peer: number;
  attrs: UbusAttrs;
}

/** ubusd's built-in event object (ubusd_event.c registers it as id 1). */
export const EVENT_OBJECT = 1;

/** LOOKUP: all objects (no OBJPATH), a path, or "prefix*"; peer 0. */
export function lookupRequest(pattern?: string): Outgoing {
  return { type: MSG.LOOKUP, peer: 0, attrs: pattern ? { objpath: pattern } : {} };
}

/** INVOKE from a caller: peer is the target object; DATA is always sent ({} by default, as the CLI does). */
export function invokeRequest(objid: number, method: string, args: UbusTable | Uint8Array): Outgoing {
  const data = args instanceof Uint8Array ? args : encodeTable(args);
  return { type: MSG.INVOKE, peer: objid, attrs: { objid, method, data } };
}

/** Event registration: `register {object, pattern}` on object 1; the id travels as a (signed) INT32. */
export function listenRequest(listenerId: number, pattern: string): Outgoing {
  return invokeRequest(EVENT_OBJECT, 'register', { object: listenerId | 0, pattern });
}

/** Event emission: `send {id, data}` on object 1. */
export function sendRequest(event: string, data: UbusTable): Outgoing {
  return invokeRequest(EVENT_OBJECT, 'send', { id: event, data });
}

/** ADD_OBJECT: OBJPATH + SIGNATURE, or nothing for the anonymous objects of listeners and subscribers. */
export function addObjectRequest(name?: string, signature?: Record<string, Record<string, number>>): Outgoing {
  const attrs: UbusAttrs = {};
  if (name) attrs.objpath = name;
  if (signature) attrs.signature = encodeNodes(signatureNodes(signature));
  return { type: MSG.ADD_OBJECT, peer: 0, attrs };
}

export function removeObjectRequest(objid: number): Outgoing {
  return { type: MSG.REMOVE_OBJECT, peer: 0, attrs: { objid } };
}

/** SUBSCRIBE: OBJID = our subscriber object, TARGET = the watched one; peer 0. */
export function subscribeRequest(subscriberId: number, target: number): Outgoing {
  return { type: MSG.SUBSCRIBE, peer: 0, attrs: { objid: subscriberId, target } };
}

/** NOTIFY from an object's owner: peer = the object's own id; no NO_REPLY, so ubusd answers. */
export function notifyRequest(objid: number, type: string, data: UbusTable | Uint8Array): Outgoing {
  return { type: MSG.NOTIFY, peer: objid, attrs: { objid, method: type, data: data instanceof Uint8Array ? data : encodeTable(data) } };
}

/**
 * An object owner's answer to an INVOKE: DATA {OBJID, DATA} when there is a
 * result, then STATUS {STATUS, OBJID}; both keep the INVOKE's seq and peer
 * (the caller's client id, README "peer semantics").
 */
export function replyMessages(seq: number, peer: number, objid: number, status: number, data?: Uint8Array) {
  const out: { type: number; seq: number; peer: number; attrs: UbusAttrs }[] = [];
  if (data) out.push({ type: MSG.DATA, seq, peer, attrs: { objid, data } });
  out.push({ type: MSG.STATUS, seq, peer, attrs: { status, objid } });
  return out;
}
