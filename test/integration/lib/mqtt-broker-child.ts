// A broker in its own process, for tests that kill it with SIGKILL:
//   node mqtt-broker-child.ts STATE-DIR MQTT-DB
// Listens on the loopback VM address (a free port), prints "ready PORT" and
// serves until killed. Log lines go to stderr.
import { createCore } from '../../../cloud/core/core.ts';
import { createMqttBroker } from '../../../cloud/mqtt/broker.ts';
import { SqlitePersistence } from '../../../cloud/mqtt/persistence/sqlite-persistence.ts';
import { loadState } from '../../../cloud/state-dir.ts';
import { openStore } from '../../../cloud/store/store.ts';
import { loopbackConfig, VM } from './mqtt-broker-env.ts';

const [stateDir, dbPath] = process.argv.slice(2);
if (!stateDir || !dbPath) throw new Error('usage: mqtt-broker-child.ts STATE-DIR MQTT-DB');
const log = (line: string) => process.stderr.write(`${line}\n`);
const store = openStore(stateDir);
const core = createCore({ store, config: loopbackConfig(loadState(stateDir, store)) });
const broker = await createMqttBroker({
  authenticate: core.mqtt.authenticate,
  access: core.mqtt.access,
  persistence: new SqlitePersistence({ path: dbPath, log }),
  log,
});
await broker.listen([VM], 0);
process.stdout.write(`ready ${broker.listening()[0]!.port}\n`);
