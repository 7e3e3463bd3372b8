import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type {
  AddDeviceRequest,
  AddDeviceResponse,
  CloudStatus,
  CreatePairingCodeRequest,
  CreatePairingCodeResponse,
  DeviceInfo,
} from '../../shared/schemas.ts';

export const CONTROL_SOCKET = 'control.sock';
/** The broker's local socket in the state directory (`aerie-cloud mqtt sub`). */
export const MQTT_SOCKET = 'mqtt.sock';
const RESPONSE_LIMIT = 4 * 1024 * 1024;

/** Sends one request and returns the status and parsed JSON body. */
export type Transport = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;

/** The API said no: `code` and `message` come from its error body. */
export class ControlError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ControlError';
    this.status = status;
    this.code = code;
  }
}

export interface ControlClient {
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  status(): Promise<CloudStatus>;
  listDevices(): Promise<DeviceInfo[]>;
  addDevice(req: AddDeviceRequest): Promise<AddDeviceResponse>;
  removeDevice(name: string): Promise<DeviceInfo>;
  createPairingCode(req?: CreatePairingCodeRequest): Promise<CreatePairingCodeResponse>;
}

export function createControlClient(transport: Transport): ControlClient {
  const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await transport(method, path, body);
    if (res.status >= 200 && res.status < 300) return res.body as T;
    const err = (res.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    throw new ControlError(
      res.status,
      typeof err?.code === 'string' ? err.code : 'http_error',
      typeof err?.message === 'string' ? err.message : `the daemon answered HTTP ${res.status}`,
    );
  };
  return {
    request,
    status: () => request('GET', '/v1/status'),
    listDevices: async () => (await request<{ devices: DeviceInfo[] }>('GET', '/v1/devices')).devices,
    addDevice: (req) => request('POST', '/v1/devices', req),
    removeDevice: async (name) =>
      (await request<{ device: DeviceInfo }>('DELETE', `/v1/devices/${encodeURIComponent(name)}`)).device,
    createPairingCode: (req = {}) => request('POST', '/v1/pairing-codes', req),
  };
}

/** HTTP over the daemon's unix socket. */
export function socketTransport(socketPath: string, timeoutMs = 15_000): Transport {
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = httpRequest(
        {
          socketPath,
          method,
          path,
          headers: {
            host: 'aerie-control',
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size > RESPONSE_LIMIT) req.destroy(new Error('the daemon sent an oversized response'));
            else chunks.push(d);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
            } catch {
              reject(new Error(`the daemon sent a response that is not JSON (HTTP ${res.statusCode})`));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the daemon did not answer within ${timeoutMs / 1000} s`)));
      req.on('error', reject);
      req.end(payload);
    });
}

/** Calls a Hono app in-process (the CLI's path when no daemon runs), through the same client. */
export function appTransport(app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }): Transport {
  return async (method, path, body) => {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await app.request(path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/**
 * A client for the daemon of `stateDir`, or null when no daemon listens there
 * (no socket file, or a stale one). Other errors (e.g. permission denied for a
 * non-root user) are thrown.
 */
export async function connectControl(stateDir: string): Promise<ControlClient | null> {
  const socketPath = join(stateDir, CONTROL_SOCKET);
  const live = await new Promise<boolean>((resolve, reject) => {
    const socket = connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the aerie-cloud daemon at ${socketPath} does not answer`));
    }, 5000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(false);
      else reject(new Error(`cannot reach the aerie-cloud daemon at ${socketPath}: ${err.message}`));
    });
  });
  return live ? createControlClient(socketTransport(socketPath)) : null;
}
