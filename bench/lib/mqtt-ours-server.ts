// Our broker as the daemon builds it (cloud/daemon.ts): core on the state
// directory, the sqlite persistence, auth and ACL hooks. bench/mqtt.ts runs
// it bundled (mqtt-bundle.ts), with the daemon's Node flags and malloc settings:
//   node mqtt-ours-server.ts STATE-DIR MQTT-DB
// Prints "ready PORT" once it listens; SIGUSR2 runs a full GC (the benchmark
// measures RSS after one); SIGTERM closes it.
import { createCore } from '../../cloud/core/core.ts';
import { createMqttBroker } from '../../cloud/mqtt/broker.ts';
import { SqlitePersistence } from '../../cloud/mqtt/persistence/sqlite-persistence.ts';
import { collectGarbage } from '../../cloud/node-flags.ts';
import { loadState } from '../../cloud/state-dir.ts';
import { openStore } from '../../cloud/store/store.ts';
import { loopbackOverlay, OURS_HOST } from './mqtt-ours-state.ts';

const [stateDir, dbPath] = process.argv.slice(2);
if (!stateDir || !dbPath) throw new Error('usage: mqtt-ours-server.ts STATE-DIR MQTT-DB');
const log = (line: string) => process.stderr.write(`${line}\n`);
const store = openStore(stateDir);
const core = createCore({ store, config: loopbackOverlay(loadState(stateDir, store)) });
const broker = await createMqttBroker({
  authenticate: core.mqtt.authenticate,
  access: core.mqtt.access,
  persistence: new SqlitePersistence({ path: dbPath, log }),
  log,
  // The load comes from one address, faster than a home's devices would connect.
  limits: { connectionsPerMinutePerSource: 1_000_000, maxClients: 5_000 },
});
await broker.listen([OURS_HOST], 0);
process.on('SIGUSR2', collectGarbage);
process.once('SIGTERM', () => {
  void broker.close().finally(() => {
    store.close();
    process.exit(0);
  });
});
process.stdout.write(`ready ${broker.listening()[0]!.port}\n`);
