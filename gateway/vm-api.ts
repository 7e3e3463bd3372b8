import { request } from 'node:http';

/**
 * Plain HTTP to the VM's API on its overlay address. Going through the tunnel
 * is what authenticates us: the VM knows the caller by its tunnel source address.
 */

export const API_PORT = 80;
const MAX_BODY = 64 * 1024;

export interface ApiReply {
  status: number;
  body: unknown;
}

/** GET one path; rejects on timeout, a network error, a body over 64 KiB or one that is not JSON. */
export function apiGet(address: string, path: string, timeoutMs: number, port = API_PORT): Promise<ApiReply> {
  return apiRequest(address, 'GET', path, undefined, timeoutMs, port);
}

export type ApiMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** One request with an optional JSON body; the same limits as apiGet. */
export function apiRequest(address: string, method: ApiMethod, path: string, body: unknown, timeoutMs: number, port = API_PORT): Promise<ApiReply> {
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = { accept: 'application/json' };
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method, headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`no answer from ${address} within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`answer from ${address} is larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('error', () => {}); // reported through req's error
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) });
        } catch {
          reject(new Error(`answer from ${address}${path} is not JSON (HTTP ${res.statusCode})`));
        }
      });
    });
    req.end(payload ?? undefined);
  });
}

/** True when the VM's API answers its health check with 2xx. */
export async function probeHealth(address: string, timeoutMs: number, port = API_PORT): Promise<boolean> {
  try {
    const r = await apiGet(address, '/v1/health', timeoutMs, port);
    return r.status >= 200 && r.status < 300;
  } catch {
    return false;
  }
}

/** The VM refused a call (status: its HTTP status) or no address answered (status 0). */
export class VmApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'VmApiError';
    this.status = status;
  }
}

export type VmCall = (method: ApiMethod, path: string, body?: unknown) => Promise<unknown>;

type Request = (address: string, method: ApiMethod, path: string, body: unknown, timeoutMs: number) => Promise<ApiReply>;

/** Calls to the first of the VM's API addresses that answers; a 2xx answer's body, else VmApiError. */
export function vmCaller(addresses: readonly string[], timeoutMs: number, send: Request = apiRequest): VmCall {
  return async (method, path, body) => {
    let failure = 'the VM has no API address in the config';
    for (const address of addresses) {
      let r: ApiReply;
      try {
        r = await send(address, method, path, body, timeoutMs);
      } catch (e) {
        failure = `the VM does not answer through the tunnel (${(e as Error).message})`;
        continue;
      }
      if (r.status >= 200 && r.status < 300) return r.body;
      const error = (r.body as { error?: { message?: unknown } } | null)?.error;
      const message = typeof error?.message === 'string' ? error.message : `HTTP ${r.status}`;
      throw new VmApiError(r.status, `the VM refused: ${message}`);
    }
    throw new VmApiError(0, failure);
  };
}
