import { ValidationError } from '../../shared/errors.ts';
import { UBUS_STATUS, UbusError } from '../ubus/error.ts';

/**
 * What a failed `aerie` method answers. ubus carries only the status code to
 * the caller, so the message is for the daemon's log and `status.last_error`.
 */
export function toUbusError(e: unknown): UbusError {
  if (e instanceof UbusError) return e;
  if (e instanceof ValidationError) return new UbusError(UBUS_STATUS.INVALID_ARGUMENT, e.message);
  return new UbusError(UBUS_STATUS.UNKNOWN_ERROR, e instanceof Error ? e.message : String(e));
}

/** The nearest ubus status for the VM API's HTTP answer, for handlers that forward to it. */
export function ubusStatusForHttp(status: number): number {
  if (status >= 200 && status < 300) return UBUS_STATUS.OK;
  if (status === 400 || status === 413 || status === 422) return UBUS_STATUS.INVALID_ARGUMENT;
  if (status === 401 || status === 403) return UBUS_STATUS.PERMISSION_DENIED;
  if (status === 404) return UBUS_STATUS.NOT_FOUND;
  if (status === 408 || status === 504) return UBUS_STATUS.TIMEOUT;
  if (status === 501) return UBUS_STATUS.NOT_SUPPORTED;
  if (status === 502 || status === 503) return UBUS_STATUS.CONNECTION_FAILED;
  return UBUS_STATUS.UNKNOWN_ERROR;
}
