// Objects this client owns on the bus: registered objects with methods, and
// the anonymous objects libubus uses for event listeners and subscribers.
// ubusd delivers all three the same way: an INVOKE whose OBJID is ours.
import { decodeTable, encodeTable } from './blobmsg.ts';
import { UbusError, UBUS_STATUS } from './error.ts';
import { encodeMessage, type UbusMessage } from './message.ts';
import { replyMessages } from './requests.ts';
import type { Connection } from './connection.ts';
import type { UbusMethod, UbusTable } from './types.ts';

export type LocalObject =
  | { kind: 'object'; id: number; name: string; methods: Record<string, UbusMethod>; signature: Record<string, Record<string, number>> }
  | { kind: 'listener'; id: number; pattern: string; handler: (event: string, data: UbusTable) => void }
  | { kind: 'subscriber'; id: number; path: string; handler: (type: string, data: UbusTable) => void; retry?: NodeJS.Timeout; retryMs?: number };

/**
 * Answers an INVOKE on one of our objects (or NOT_FOUND): DATA (when the
 * handler returned a table) then STATUS, with the INVOKE's seq and peer and
 * our OBJID (README "peer semantics"). ubusd drops a listener's STATUS, but
 * libubus sends it anyway, and so do we.
 */
export function answerInvoke(conn: Connection, obj: LocalObject | undefined, msg: UbusMessage, log: (m: string) => void): void {
  const objid = msg.attrs.objid ?? 0;
  const method = msg.attrs.method ?? '';
  const reply = (status: number, data?: Uint8Array): void => {
    if (msg.attrs.noReply) return;
    if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) status = UBUS_STATUS.UNKNOWN_ERROR;
    let frames: Uint8Array[];
    try {
      frames = replyMessages(msg.seq, msg.peer, objid, status, data).map((m) => encodeMessage(m, m.attrs));
    } catch (e) {
      // Only a DATA over 1 MiB can fail; the caller then gets UNKNOWN_ERROR.
      if (!data) throw e;
      log(`ubus: reply to ${method} not sent: ${(e as Error).message}`);
      return reply(UBUS_STATUS.UNKNOWN_ERROR);
    }
    for (const f of frames) conn.send(f);
  };
  if (!obj) return reply(UBUS_STATUS.NOT_FOUND);
  let args: UbusTable;
  try {
    args = msg.attrs.data ? decodeTable(msg.attrs.data) : {};
  } catch (e) {
    log(`ubus: bad arguments for ${method}: ${(e as Error).message}`);
    return reply(UBUS_STATUS.INVALID_ARGUMENT);
  }
  if (obj.kind !== 'object') {
    try {
      obj.handler(method, args);
    } catch (e) {
      log(`ubus: ${obj.kind} handler for ${method} threw: ${(e as Error).message}`);
    }
    return reply(UBUS_STATUS.OK);
  }
  const m = Object.hasOwn(obj.methods, method) ? obj.methods[method] : undefined;
  if (!m) return reply(UBUS_STATUS.METHOD_NOT_FOUND);
  const caller: { user?: string; group?: string } = {};
  if (msg.attrs.user !== undefined) caller.user = msg.attrs.user;
  if (msg.attrs.group !== undefined) caller.group = msg.attrs.group;
  // A promise is a deferred reply: the answer goes out when it settles.
  Promise.resolve()
    .then(() => m.handler(args, caller))
    .then(
      (result) => {
        if (result === undefined) return reply(UBUS_STATUS.OK);
        let data: Uint8Array;
        try {
          data = encodeTable(result);
        } catch (e) {
          log(`ubus: ${obj.name}.${method} returned an unsendable value: ${(e as Error).message}`);
          return reply(UBUS_STATUS.UNKNOWN_ERROR);
        }
        reply(UBUS_STATUS.OK, data);
      },
      (e: unknown) => {
        if (e instanceof UbusError) return reply(e.status);
        log(`ubus: ${obj.name}.${method} failed: ${(e as Error)?.message ?? String(e)}`);
        reply(UBUS_STATUS.UNKNOWN_ERROR);
      },
    );
}
