/**
 * What core refuses, by kind. The API maps kinds to HTTP statuses; the CLI
 * prints the message. Bad input shape is a ValidationError instead.
 */
export type CoreErrorCode =
  | 'not_found' // no such device
  | 'conflict' // name, key or prefix already taken
  | 'invalid_code' // pairing code unknown, used or expired
  | 'exhausted' // no overlay address left
  | 'unavailable'; // needs the running daemon (live DNS counters, say)

export class CoreError extends Error {
  readonly code: CoreErrorCode;
  constructor(code: CoreErrorCode, message: string) {
    super(message);
    this.name = 'CoreError';
    this.code = code;
  }
}
