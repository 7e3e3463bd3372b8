/**
 * The one error type for bad input at any boundary that uses shared code:
 * it names the field and says what was expected.
 */
export class ValidationError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'ValidationError';
    this.field = field;
  }
}

/**
 * Names bad input in an error message: short text as it is, long text only by
 * its length (it may be a key or a secret pasted into the wrong field).
 */
export function describeInput(text: unknown): string {
  if (typeof text !== 'string') return text === null ? 'null' : typeof text;
  if (text.length > 60) return `a string of ${text.length} characters`;
  return JSON.stringify(text);
}
