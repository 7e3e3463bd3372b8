import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createEventBus } from '../../cloud/events.ts';

test('listeners get typed payloads until they unsubscribe', () => {
  const bus = createEventBus();
  const seen: string[] = [];
  const off = bus.on('devices-changed', (e) => seen.push(`${e.reason}:${e.name}`));
  bus.on('pairing-codes-changed', (e) => seen.push(`code:${e.reason}`));
  bus.emit('devices-changed', { reason: 'added', name: 'phone' });
  bus.emit('pairing-codes-changed', { reason: 'used' });
  off();
  bus.emit('devices-changed', { reason: 'removed', name: 'phone' });
  assert.equal(seen, ['added:phone', 'code:used']);
});

test('a failing listener does not stop the others or the emitter', () => {
  const errors: string[] = [];
  const bus = createEventBus((err, name) => errors.push(`${name}: ${(err as Error).message}`));
  let after = 0;
  bus.on('devices-changed', () => {
    throw new Error('boom');
  });
  bus.on('devices-changed', () => after++);
  bus.emit('devices-changed', { reason: 'paired', name: 'home' });
  assert.is(after, 1);
  assert.equal(errors, ['devices-changed: boom']);
});

test.run();
