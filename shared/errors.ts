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
