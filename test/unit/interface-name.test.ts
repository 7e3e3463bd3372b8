import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkInterfaceName, MAX_INTERFACE_NAME } from '../../shared/interface-name.ts';
import { throwsValidation } from './throws-validation.ts';

function refused(name: unknown, pattern: RegExp): void {
  const e = throwsValidation(() => checkInterfaceName(name, 'wanInterface'), 'wanInterface', pattern);
  assert.match(e.message, /^wanInterface: /);
}

test('usual names are accepted and returned as given', () => {
  for (const name of ['eth0', 'aerie0', 'lan0', 'br-lan', 'eth0.100', 'wg_home', 'enp0s31f6.1000x', 'A']) {
    assert.is(checkInterfaceName(name, 'interface'), name);
  }
  assert.is(MAX_INTERFACE_NAME, 15);
});

test('the length is that of the kernel: 15 characters at most, none is not a name', () => {
  assert.is(checkInterfaceName('a'.repeat(15), 'interface'), 'a'.repeat(15));
  refused('a'.repeat(16), /"a{16}" is longer than 15 characters/);
  refused('', /expected an interface name, got an empty string/);
  // A huge name is not echoed whole.
  const e = throwsValidation(() => checkInterfaceName('x'.repeat(10_000), 'interface'), 'interface', /longer than 15/);
  assert.ok(e.message.length < 200, e.message);
});

test('nothing that would need quoting, match as an nft wildcard or read as an option', () => {
  for (const bad of ['eth 0', 'eth0\n', 'e"; flush x', 'eth*', 'a/b', '../x', 'eth0@if3', 'wlan:1', 'ä']) {
    refused(bad, /may hold only letters, digits, '_', '-' and '\.'/);
  }
  refused('.', /may hold only/);
  refused('..', /may hold only/);
  refused('-h', /must not start with '-'/);
  refused('--help', /must not start with '-'/);
});

test('a value that is not a string is named by its type', () => {
  refused(7, /got number/);
  refused(null, /got object/);
  refused(undefined, /got undefined/);
});

test.run();
