import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';

/** Calls fn, asserts it throws a ValidationError for `field` (message matching `pattern`), returns it. */
export function throwsValidation(fn: () => unknown, field: string, pattern?: RegExp): ValidationError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof ValidationError, `expected a ValidationError, got ${String(thrown)}`);
  assert.is(thrown.field, field, thrown.message);
  if (pattern) assert.match(thrown.message, pattern);
  return thrown;
}
