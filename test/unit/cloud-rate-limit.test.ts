import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRateLimiter, rateLimitKey } from '../../cloud/core/rate-limit.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('five failures in a minute block the address, with a Retry-After', () => {
  const c = clock();
  const rl = createRateLimiter({ now: c.now });
  for (let i = 0; i < 4; i++) {
    rl.fail('198.51.100.2');
    c.advance(1000);
  }
  assert.equal(rl.check('198.51.100.2'), { allowed: true });
  rl.fail('198.51.100.2');
  const d = rl.check('198.51.100.2');
  assert.is(d.allowed, false);
  // The first failure was 4 s ago, so it leaves the window in 56 s.
  assert.is(d.allowed === false && d.retryAfterSeconds, 56);
});

test('other addresses are not affected', () => {
  const rl = createRateLimiter({ now: clock().now });
  for (let i = 0; i < 5; i++) rl.fail('198.51.100.2');
  assert.is(rl.check('198.51.100.2').allowed, false);
  assert.is(rl.check('198.51.100.3').allowed, true);
  assert.is(rl.check('2001:db8:100::2').allowed, true);
});

test('the block ends when the failures leave the window', () => {
  const c = clock();
  const rl = createRateLimiter({ now: c.now, limit: 3, windowMs: 10_000 });
  for (let i = 0; i < 3; i++) rl.fail('a');
  assert.is(rl.check('a').allowed, false);
  c.advance(9_999);
  assert.is(rl.check('a').allowed, false);
  c.advance(1);
  assert.is(rl.check('a').allowed, true);
  rl.fail('a');
  assert.is(rl.check('a').allowed, true, 'old failures no longer count');
});

test('memory stays bounded: stale and excess keys are forgotten', () => {
  const c = clock();
  const rl = createRateLimiter({ now: c.now, maxKeys: 100, windowMs: 1000 });
  for (let i = 0; i < 1000; i++) rl.fail(`k${i}`);
  assert.is(rl.size, 100);
  assert.is(rl.check('k999').allowed, true);
  c.advance(2000);
  rl.fail('late');
  assert.is(rl.size, 1, 'keys whose failures left the window are dropped');
});

test('callers are keyed by IPv4 address, or by IPv6 /64', () => {
  assert.is(rateLimitKey('198.51.100.2'), '198.51.100.2');
  assert.is.not(rateLimitKey('198.51.100.2'), rateLimitKey('198.51.100.3'));
  assert.is(rateLimitKey('2001:db8:100:7:1:2:3:4'), '2001:db8:100:7::/64');
  assert.is(rateLimitKey('2001:db8:100:7::9'), rateLimitKey('2001:db8:100:7:ffff::1'));
  assert.is.not(rateLimitKey('2001:db8:100:7::1'), rateLimitKey('2001:db8:100:8::1'));
  assert.is(rateLimitKey('not an address'), 'not an address');
});

test.run();
