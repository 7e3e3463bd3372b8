import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ValidationError } from '../../shared/errors.ts';
import { CoreError, type CoreErrorCode } from '../core/errors.ts';

/** An error that already knows its HTTP status and error code. */
export class HttpError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: ContentfulStatusCode, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const CORE_STATUS: Record<CoreErrorCode, ContentfulStatusCode> = {
  not_found: 404,
  conflict: 409,
  invalid_code: 403,
  exhausted: 409,
  unavailable: 503,
};

/** Maps anything thrown to an HttpError; unknown errors become a 500 that reveals nothing. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ValidationError) return new HttpError(400, 'bad_request', err.message);
  if (err instanceof CoreError) return new HttpError(CORE_STATUS[err.code], err.code, err.message);
  return new HttpError(500, 'internal', 'internal error');
}

/** The one error body: { "error": { "code", "message" } }. */
export function errorResponse(c: Context, err: HttpError): Response {
  for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  return c.json({ error: { code: err.code, message: err.message } }, err.status);
}
