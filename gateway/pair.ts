import { stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ValidationError } from '../shared/errors.ts';
import { generateKeyPair } from '../shared/keys.ts';
import { decodePairingCode, encodeSecret, PairingCodeError } from '../shared/pairing-code.ts';
import type { Runner } from '../shared/run.ts';
import { ApiError, DeviceName, PairRequest, PairResponse, parseWith } from '../shared/schemas.ts';
import * as v from 'valibot';
import {
  ConfigError,
  KEY_FILE_NAME,
  keyFilePath,
  loadConfig,
  parseConfig,
  renderConfig,
  writeFileAtomic,
  type GatewayConfig,
} from './config.ts';
import { readLanPrefixes } from './lan-prefixes.ts';
import { pinnedRequest, PinnedRequestError } from './pinned-request.ts';

/** Why pairing failed, in one line for a person; nothing has been written. */
export class PairError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PairError';
  }
}

export interface PairOptions {
  code: string;
  configPath: string;
  run: Runner;
  /** Default: br-lan, OpenWrt's LAN bridge. */
  lanInterfaces?: string[];
  /** Default: from the host name. */
  name?: string;
  /** Pair again over an existing config (and key). */
  force?: boolean;
  /** Bound on talking to the VM (default 10 s). */
  timeoutMs?: number;
  /** How files are written (tests inject failures); default writeFileAtomic. */
  writeFile?: (path: string, data: string, mode: number) => Promise<void>;
}

export interface PairResult {
  config: GatewayConfig;
  configPath: string;
  keyFile: string;
  publicKey: string;
}

export const DEFAULT_LAN_INTERFACES = ['br-lan'];

/** A device name from the host name: lower case, runs of other characters as one dash. */
export function defaultName(host = hostname()): string {
  const name = host
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/, '');
  return v.is(DeviceName, name) ? name : 'router';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The key files the current config may use: the one it names, and the
 * default name in its directory (when the config does not load, or is absent).
 */
/**
 * The router's own DNS settings from the config being replaced: they describe
 * this router (where its resolver reads its upstreams), not the VM, so pairing
 * again keeps them. Defaults when there is no readable config.
 */
async function localDnsSettings(configPath: string): Promise<{ dnsIntercept: boolean; dnsResolvFile?: string }> {
  try {
    const c = await loadConfig(configPath);
    if (c) return { dnsIntercept: c.dnsIntercept, ...(c.dnsResolvFile !== undefined && { dnsResolvFile: c.dnsResolvFile }) };
  } catch {
    // unreadable: nothing to keep
  }
  return { dnsIntercept: true };
}

async function keysInUse(configPath: string, configDir: string): Promise<string[]> {
  const found = new Set<string>();
  try {
    const c = await loadConfig(configPath);
    if (c) found.add(keyFilePath(configPath, c));
  } catch {
    // An unreadable config names no key; the default one below is still ours.
  }
  const standard = join(configDir, KEY_FILE_NAME);
  if (await exists(standard)) found.add(standard);
  return [...found];
}

/** The default key name when free, else one with a random suffix ("gateway-1a2b3c4d.key"). */
async function freshKeyFile(configDir: string): Promise<string> {
  const standard = join(configDir, KEY_FILE_NAME);
  if (!(await exists(standard))) return standard;
  for (let i = 0; i < 8; i++) {
    const suffix = Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex');
    const candidate = join(configDir, KEY_FILE_NAME.replace(/\.key$/, `-${suffix}.key`));
    if (!(await exists(candidate))) return candidate;
  }
  throw new PairError(`cannot find a free key file name in ${configDir}`);
}

/** What the VM said when it said no, from its `{ error: { code, message } }`. */
function refusal(status: number, body: string): string {
  let said = '';
  try {
    said = parseWith(ApiError, JSON.parse(body)).error.message;
  } catch {
    said = '';
  }
  if (status === 403) {
    return `the VM refused the pairing code${said ? `: ${said}` : ''} (a code works once and expires; make a new one with 'aerie-cloud pair')`;
  }
  return `the VM answered HTTP ${status}${said ? `: ${said}` : ''}`;
}

/**
 * Pairs this router with the VM named in the code. Everything that can fail
 * (the code, the LAN, the VM, its answer) is checked before anything is
 * written; then the key and the config are each written atomically.
 * Paths may be relative to the working directory; the config stores the key's absolute path.
 */
export async function pair(opts: PairOptions): Promise<PairResult> {
  let code;
  try {
    code = decodePairingCode(opts.code);
  } catch (e) {
    if (e instanceof PairingCodeError) throw new PairError(e.message.replace(/^pairingCode: /, ''));
    throw e;
  }

  // Refuse before contacting the VM, so that the one-time code is not spent.
  if (!opts.force && (await exists(opts.configPath))) {
    let what = '';
    try {
      const c = await loadConfig(opts.configPath);
      if (c) what = ` as ${c.name} with the VM at ${c.vm.endpoint}`;
    } catch {
      what = ' (its config does not load)';
    }
    throw new PairError(`already paired${what}; use --force to pair again (${opts.configPath})`);
  }

  const name = opts.name ?? defaultName();
  try {
    parseWith(DeviceName, name, '--name');
  } catch (e) {
    throw new PairError(`--name: ${(e as ValidationError).message.replace(/^[^:]*: /, '')}`);
  }
  const lanInterfaces = opts.lanInterfaces?.length ? [...new Set(opts.lanInterfaces)] : DEFAULT_LAN_INTERFACES;
  let lan;
  try {
    lan = await readLanPrefixes(opts.run, lanInterfaces);
  } catch (e) {
    throw new PairError((e as Error).message);
  }

  // The private key is made here and never leaves this machine.
  const keys = generateKeyPair();
  let request: PairRequest;
  try {
    request = parseWith(
      PairRequest,
      { secret: encodeSecret(code.secret), publicKey: keys.publicKey, name, lanPrefixes: lan.map((l) => l.prefix) },
      'request',
    );
  } catch (e) {
    throw new PairError(`cannot pair with these LAN prefixes: ${(e as Error).message}`);
  }

  let reply;
  try {
    reply = await pinnedRequest({
      host: code.host,
      port: code.port,
      fingerprint: code.fingerprint,
      method: 'POST',
      path: '/v1/pair',
      body: JSON.stringify(request),
      timeoutMs: opts.timeoutMs ?? 10_000,
    });
  } catch (e) {
    if (e instanceof PinnedRequestError) throw new PairError(e.message);
    throw e;
  }
  if (reply.status !== 200) throw new PairError(refusal(reply.status, reply.body));

  let answer: PairResponse;
  try {
    answer = parseWith(PairResponse, JSON.parse(reply.body), 'answer');
  } catch (e) {
    const why = e instanceof SyntaxError ? 'it is not JSON' : (e as Error).message;
    throw new PairError(`the VM's answer is malformed (${why})`);
  }
  if (answer.vmPublicKey === keys.publicKey) throw new PairError("the VM's answer is malformed (it gave our own key back)");

  // Absolute, so that a relative --config does not get its directory applied twice.
  const configDir = dirname(resolve(opts.configPath));
  const oldKeys = await keysInUse(opts.configPath, configDir);
  const dns = await localDnsSettings(opts.configPath);
  const keyFile = await freshKeyFile(configDir);
  let config: GatewayConfig;
  try {
    config = parseConfig(
      {
        name: answer.name,
        enabled: true,
        killSwitch: true,
        ...dns,
        interface: 'aerie',
        lanInterfaces,
        lanPrefixes: lan,
        privateKeyFile: keyFile,
        vm: {
          publicKey: answer.vmPublicKey,
          endpoint: answer.endpoint,
          addresses: answer.addresses,
          overlay: answer.overlay,
          api: answer.services.api,
          keepalive: answer.keepalive,
          ...(answer.homeV6 && { homeV6: answer.homeV6 }),
        },
      },
      opts.configPath,
    );
  } catch (e) {
    if (e instanceof ConfigError) throw new PairError(`the VM's answer cannot be used: ${e.message.replace(/^config [^:]*: /, '')}`);
    throw e;
  }

  // The new key under a name no file has, then the config that points at it (each
  // an atomic rename), then the old key: a failure anywhere leaves a working pair.
  const write = opts.writeFile ?? writeFileAtomic;
  await write(keyFile, `${keys.privateKey}\n`, 0o600);
  try {
    await write(opts.configPath, renderConfig(config), 0o644);
  } catch (e) {
    await unlink(keyFile).catch(() => {});
    throw e;
  }
  for (const old of oldKeys) await unlink(old).catch(() => {});
  return { config, configPath: opts.configPath, keyFile, publicKey: keys.publicKey };
}

/** "paired as NAME with the VM at ENDPOINT; tunnel addresses …" */
export function describePairing(r: PairResult): string {
  const c = r.config;
  return `paired as ${c.name} with the VM at ${c.vm.endpoint}; tunnel addresses ${c.vm.addresses.join(', ')}; LAN ${c.lanPrefixes
    .map((p) => p.prefix)
    .join(', ')}; start the tunnel with 'aerie-gateway run'`;
}

/**
 * Forgets the pairing: the config first (so a running daemon sees "not
 * paired" rather than a config without its key), then its key files.
 * Returns the files removed; none when not paired.
 */
export async function forgetPairing(configPath: string): Promise<string[]> {
  const keys = await keysInUse(configPath, dirname(resolve(configPath)));
  const removed: string[] = [];
  for (const file of [configPath, ...keys]) {
    try {
      await unlink(file);
      removed.push(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new PairError(`cannot remove ${file}: ${(e as Error).message}`);
    }
  }
  return removed;
}
