import * as assert from 'uvu/assert';
import { CoreError } from '../../cloud/core/errors.ts';

/** Runs fn, expects a CoreError of `code` whose message matches. */
export function throwsCore(fn: () => unknown, code: string, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CoreError, String(e));
    assert.is(e.code, code);
    assert.match(e.message, pattern);
    return;
  }
  assert.unreachable('expected a CoreError');
}
