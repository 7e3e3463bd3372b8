import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderSVG } from 'uqr';
import pkg from '../package.json' with { type: 'json' };
import { createRunner } from '../shared/run.ts';
import { configSource, DEFAULT_CONFIG_PATH, DEFAULT_INTERFACE, DEFAULT_TABLE, loadConfig, type GatewayConfig } from './config.ts';
import { systemResolver } from './endpoint.ts';
import { connectMqtt } from './control/mqtt-tcp.ts';
import { createControlLink } from './control/link.ts';
import { createControlState } from './control-state.ts';
import { keepLanOffWan } from './fail-closed.ts';
import { missingDaemonFlags } from './node-flags.ts';
import { describePairing, forgetPairing, pair } from './pair.ts';
import { choosePlatform } from './platform/detect.ts';
import { createHomeV6 } from './platform/home-v6.ts';
import { createLinuxPlatform } from './platform/linux.ts';
import { createOpenwrtPlatform } from './platform/openwrt/index.ts';
import { listenInterfaceEvents } from './platform/openwrt/interface-events.ts';
import type { Platform } from './platform/platform.ts';
import { createReconciler } from './reconciler.ts';
import { withRouterSwitches } from './router-switches.ts';
import { AERIE_OBJECT, createAerieObject } from './rpc/aerie-object.ts';
import { createAerieHandlers } from './rpc/handlers.ts';
import { formatStatus, readStatus } from './status.ts';
import { connectUbus, type UbusClient } from './ubus/index.ts';
import { apiGet, apiRequest, probeHealth, vmCaller } from './vm-api.ts';
import { ALL_VM_VIEW_PARTS, createVmView, readVmViewFile, viewPartsFor, VM_VIEW_FILE } from './vm-view.ts';
import { readWan } from './wan-state.ts';
import { firstResolving, OPENWRT_WAN_RESOLV, wanResolver } from './wan-resolver.ts';

// The composition root: the only place that knows every part. Nothing imports it.

const USAGE = `Usage: aerie-gateway <command> [options]

Commands:
  pair CODE [--lan-interface IF]... [--name NAME] [--force]
                  pair this router with the VM named in the code (from 'aerie-cloud pair')
  run             the daemon: keep the tunnel, policy routing, kill switch and DNS
                  interception in place
  down            remove the tunnel, policy routing, kill switch and DNS interception
                  (stop the daemon first; a dnsResolvFile stays, so DNS fails closed)
  unpair          remove all of that and forget the VM (config and key)
  status [--json] tunnel state, last handshake, bytes, DNS interception, and who the
                  VM says we are

Options:
  --config PATH   the config file (default ${DEFAULT_CONFIG_PATH})
  --help          show this text
  --version       show the version
`;

class UsageError extends Error {}

/** Where the Linux adapter keeps run-time files (radvd's). */
const DEFAULT_RUN_DIR = '/run/aerie';

/** How often the daemon looks whether the control channel matches the config (pairing, enabled, VM). */
const CONTROL_CHECK_MS = 2000;

const PER_COMMAND: Record<string, string[]> = {
  pair: ['lan-interface', 'name', 'force'],
  run: [],
  down: [],
  unpair: [],
  status: ['json'],
};

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        json: { type: 'boolean' },
        force: { type: 'boolean' },
        name: { type: 'string' },
        'lan-interface': { type: 'string', multiple: true },
      },
    });
  } catch (e) {
    // parseArgs explains at length; one line is enough here.
    const m = /option '(-[-\w]+)/i.exec((e as Error).message);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && m) throw new UsageError(`unknown option ${m[1]} (see --help)`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && m) throw new UsageError(`option ${m[1]} needs a value`);
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
}

/** The adapter for this system, and on OpenWrt the ubus connection it works through. */
interface System {
  platform: Platform;
  ubus: UbusClient | null;
}

async function openSystem(configPath: string, config: GatewayConfig | null, log: (m: string) => void, daemon: boolean): Promise<System> {
  const run = createRunner();
  const own = { interface: config?.interface ?? DEFAULT_INTERFACE, table: config?.routing.table ?? DEFAULT_TABLE };
  const { name } = await choosePlatform(daemon ? log : () => {});
  if (name === 'linux') {
    // radvd's config and pid file, and what was set up for the home's IPv6 (AERIE_RUN_DIR: a test's own place).
    const runDir = process.env['AERIE_RUN_DIR'] || DEFAULT_RUN_DIR;
    return { platform: createLinuxPlatform(run, { own, log, homeV6: createHomeV6(run, { runDir, log }) }), ubus: null };
  }
  // No ubusd at start is an error (procd starts the daemon again); once connected,
  // the daemon rides out ubusd restarts, a command just fails.
  // AERIE_UBUS_SOCKET names another ubusd socket (a test's, or an unusual system's).
  const socket = process.env['AERIE_UBUS_SOCKET'] || undefined;
  const ubus = await connectUbus({ reconnect: daemon, log, ...(socket ? { socket } : {}) });
  // Next to the config (on flash, kept by sysupgrade): what the adapter changed in
  // sections not its own, and the rules fw4 includes in its forward chain.
  const dir = dirname(resolve(configPath));
  return {
    platform: createOpenwrtPlatform({ ubus, run, own, stateFile: join(dir, 'openwrt-state.json'), forwardFile: join(dir, 'forward.nft'), log }),
    ubus,
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const logLine = (message: string) => process.stderr.write(`aerie-gateway: ${message}\n`);

async function runDaemon(configPath: string): Promise<void> {
  // A broken config at start is an error; later, a broken edit keeps the last good one running.
  let first: GatewayConfig | null;
  try {
    first = await loadConfig(configPath);
  } catch (e) {
    // Fail closed: the home stays off the WAN until the config is mended.
    if (await keepLanOffWan(configPath, createRunner()).catch(() => false)) {
      logLine('the config does not load; the kill switch is in place until it does');
    }
    throw e;
  }
  const system = await openSystem(configPath, first, logLine, true);
  const { platform, ubus } = system;
  // On OpenWrt the switches in UCI (LuCI, `uci set`) lie over the JSON config.
  const load = ubus ? withRouterSwitches(configSource(configPath), ubus, logLine) : configSource(configPath);
  // What the VM holds for this home: shown, and its isolated devices fenced in here too.
  const vm = async () => {
    const loaded = await load();
    return loaded ? { call: vmCaller(loaded.config.vm.api, 5000), name: loaded.config.name } : null;
  };
  const view = createVmView({ vm, file: join(dirname(resolve(configPath)), VM_VIEW_FILE), log: logLine });
  await view.load();
  const reconciler = createReconciler({
    platform,
    load,
    probe: (address, timeoutMs) => probeHealth(address, timeoutMs),
    // On OpenWrt the router's own resolver needs the tunnel; the WAN's servers do not.
    resolve: ubus ? firstResolving(wanResolver(OPENWRT_WAN_RESOLV), systemResolver()) : systemResolver(),
    log: logLine,
    isolated: () => view.current().firewall?.isolated ?? [],
  });
  const run = createRunner();
  // The control channel: state out, the VM's commands in, over the VM's MQTT broker.
  const link = createControlLink({
    load,
    connect: connectMqtt,
    log: (m) => logLine(`control: ${m}`),
    version: pkg.version,
    state: createControlState({
      configPath,
      load,
      platform,
      view: view.current,
      wan: (tunnel) => readWan(run, tunnel),
      blockedQueries: async () => {
        const paired = await vm();
        if (!paired) return null;
        const stats = (await paired.call('GET', '/v1/dns/stats')) as { devices?: Record<string, { blocked?: unknown }> } | null;
        const blocked = stats?.devices?.[paired.name]?.blocked;
        return typeof blocked === 'number' ? blocked : null;
      },
    }),
    onCommand: async (command, payload) => {
      const parts = viewPartsFor(command, payload);
      await view.refresh(parts);
      if (parts.includes('firewall')) await reconciler.pass();
      link.update();
    },
    resync: async () => {
      await view.refresh(ALL_VM_VIEW_PARTS);
      await reconciler.pass();
      link.update();
    },
  });
  if (ubus) {
    const handlers = createAerieHandlers({
      configPath,
      load,
      platform,
      reconciler,
      request: apiRequest,
      pair: (code) => pair({ code, configPath, run }),
      unpair: async () => {
        // Paused so that no pass re-applies the old state between the two steps.
        await reconciler.stop();
        try {
          await platform.set(null);
          await forgetPairing(configPath);
        } finally {
          await reconciler.start();
        }
      },
      qrSvg: (text) => renderSVG(text, { border: 2 }),
      control: () => link.state(),
      view: view.current,
    });
    await ubus.register(AERIE_OBJECT, createAerieObject(handlers, { log: logLine }));
    // A WAN that comes up elsewhere changes the kill switch's rules: a pass picks it up at once.
    // Our own tunnel's events are the adapter's doing and need no pass.
    await listenInterfaceEvents(ubus, () => void reconciler.pass(), [first?.interface ?? DEFAULT_INTERFACE]);
  }
  const checkLink = () => void link.check().catch((e: Error) => logLine(`control: ${e.message}`));
  const linkTimer = setInterval(checkLink, CONTROL_CHECK_MS);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // The kill switch, rules and routes stay in the kernel: only 'down' removes them.
    logLine(`${signal}: stopping; the kill switch stays in place`);
    clearInterval(linkTimer);
    // "offline" first, while the tunnel still carries it.
    void link
      .close()
      .then(() => reconciler.stop())
      .then(() => ubus?.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void reconciler.pass().then(checkLink));
  logLine(`started (config ${configPath})`);
  const missing = missingDaemonFlags();
  if (missing.length > 0) logLine(`hint: start the daemon with node ${missing.join(' ')} to keep its memory small`);
  await reconciler.start();
  checkLink();
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    say(`aerie-gateway ${pkg.version}`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (!command) throw new UsageError('no command given (see --help)');
  const allowed = PER_COMMAND[command];
  if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(command)} (see --help)`);
  for (const key of Object.keys(values)) {
    if (key !== 'config' && !allowed.includes(key)) throw new UsageError(`--${key} does not go with ${command}`);
  }
  const configPath = values.config ?? DEFAULT_CONFIG_PATH;

  if (command === 'pair') {
    if (rest.length !== 1) throw new UsageError('pair needs exactly one pairing code (quote it if it has spaces)');
    const result = await pair({
      code: rest[0]!,
      configPath,
      run: createRunner(),
      ...(values['lan-interface'] ? { lanInterfaces: values['lan-interface'] } : {}),
      ...(values.name !== undefined ? { name: values.name } : {}),
      force: values.force === true,
    });
    say(describePairing(result));
    return 0;
  }
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments, got ${JSON.stringify(rest[0])}`);

  if (command === 'run') {
    await runDaemon(configPath);
    return -1; // keeps running
  }
  if (command === 'down' || command === 'unpair') {
    let config: GatewayConfig | null = null;
    try {
      config = await loadConfig(configPath);
    } catch (e) {
      logLine(`${(e as Error).message}; removing with the default names`);
    }
    const system = await openSystem(configPath, config, logLine, false);
    try {
      await system.platform.set(null);
    } finally {
      await system.ubus?.close();
    }
    say('removed the tunnel, policy routing, kill switch and DNS interception');
    if (command === 'unpair') {
      const removed = await forgetPairing(configPath);
      say(removed.length ? `forgot the pairing: removed ${removed.join(', ')}` : 'was not paired');
    }
    return 0;
  }
  // status
  const file = await loadConfig(configPath);
  const system = await openSystem(configPath, file, logLine, false);
  try {
    // What is in force: on OpenWrt, the UCI switches over the file.
    const config = system.ubus ? ((await withRouterSwitches(async () => (file ? { config: file } : null), system.ubus, logLine)())?.config ?? null) : file;
    const view = await readVmViewFile(join(dirname(resolve(configPath)), VM_VIEW_FILE));
    const status = await readStatus({ configPath, config, platform: system.platform, get: apiGet, view });
    process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  } finally {
    await system.ubus?.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`aerie-gateway: ${message.split('\n')[0]}\n`);
    process.exitCode = 1;
  },
);
