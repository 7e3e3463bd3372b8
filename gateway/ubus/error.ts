/** ubus status codes (libubus, enum ubus_msg_status). */
export const UBUS_STATUS = {
  OK: 0,
  INVALID_COMMAND: 1,
  INVALID_ARGUMENT: 2,
  METHOD_NOT_FOUND: 3,
  NOT_FOUND: 4,
  NO_DATA: 5,
  PERMISSION_DENIED: 6,
  TIMEOUT: 7,
  NOT_SUPPORTED: 8,
  UNKNOWN_ERROR: 9,
  CONNECTION_FAILED: 10,
  NO_MEMORY: 11,
  PARSE_ERROR: 12,
  SYSTEM_ERROR: 13,
} as const;

const NAMES = Object.fromEntries(Object.entries(UBUS_STATUS).map(([k, v]) => [v, k])) as Record<number, string>;

/** The one error type of the ubus boundary: a status from the peer, a timeout, a closed socket, or a malformed frame. */
export class UbusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'UbusError';
    this.status = status;
  }
  /** "NOT_FOUND" for 4. */
  get statusName(): string {
    return NAMES[this.status] ?? `status ${this.status}`;
  }
}
