// The abstract test suite that aedes-persistence publishes for persistence
// implementations, run against ours. It is written for node:test, so
// test/integration/mqtt-persistence.test.ts runs this file with node:test's
// run() and checks that every test of the suite passed.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SqlitePersistence } from '../../../cloud/mqtt/persistence/sqlite-persistence.ts';

type Abstract = (opts: { test: typeof test; persistence: () => SqlitePersistence; testAsync: boolean }) => void;
const abstract = createRequire(import.meta.url)('aedes-persistence/abstract.js') as Abstract;

// The caller names the directory (so it can remove it whatever happens here).
const dir = process.env['AERIE_MQTT_SUITE_DIR'] ?? mkdtempSync(join(tmpdir(), 'aerie-mqtt-suite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
abstract({
  test,
  // every test gets a database of its own
  persistence: () => new SqlitePersistence({ path: join(dir, `suite-${++n}.db`), log: () => {} }),
  testAsync: true,
});
