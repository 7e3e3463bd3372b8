// The public shapes of the ubus client, shared by the client, the OpenWrt
// adapter (which only calls) and the `aerie` object (which is called).

export type UbusValue = null | boolean | number | bigint | string | UbusValue[] | { [key: string]: UbusValue };
export type UbusTable = { [key: string]: UbusValue };

/** What the OpenWrt adapter needs: rpcd's `uci` object, netifd's objects. */
export interface UbusCaller {
  /**
   * Looks the object up and invokes the method; DATA replies are merged into
   * one table. Throws UbusError on a non-zero STATUS or a timeout (default 15 s).
   */
  call(path: string, method: string, args?: UbusTable, opts?: { timeoutMs?: number }): Promise<UbusTable>;
}

export type UbusArgType = 'array' | 'table' | 'string' | 'int64' | 'int32' | 'int16' | 'bool' | 'double' | 'unspec';

export interface UbusMethod {
  /** Argument names and types: the object's signature, as `ubus list -v` shows it. */
  args?: Record<string, UbusArgType>;
  /**
   * A returned table goes back as DATA, then STATUS 0; a thrown UbusError is
   * its STATUS; a promise is a deferred reply.
   */
  handler(args: UbusTable, caller: { user?: string; group?: string }): UbusTable | void | Promise<UbusTable | void>;
}

export interface UbusObjectInfo {
  path: string;
  id: number;
  typeId: number;
  signature: Record<string, Record<string, number>>;
}

export interface UbusRegistered {
  readonly id: number;
  notify(type: string, data?: UbusTable): Promise<void>;
  remove(): Promise<void>;
}

export interface UbusClient extends UbusCaller {
  /** Objects by exact path or "prefix*". */
  lookup(pattern?: string): Promise<UbusObjectInfo[]>;
  listen(pattern: string, handler: (event: string, data: UbusTable) => void): Promise<() => Promise<void>>;
  send(event: string, data?: UbusTable): Promise<void>;
  subscribe(path: string, handler: (type: string, data: UbusTable) => void): Promise<() => Promise<void>>;
  register(name: string, methods: Record<string, UbusMethod>): Promise<UbusRegistered>;
  close(): Promise<void>;
}
