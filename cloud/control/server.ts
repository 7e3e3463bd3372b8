import { createAdaptorServer } from '@hono/node-server';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, type Server as NetServer } from 'node:net';

type FetchApp = { fetch: (request: Request, env: never) => Response | Promise<Response> };

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Serves `app` (createApi with identifyLocal) as HTTP on a unix socket that
 * only root can use, inside the 0700 state directory.
 */
export async function serveControl(app: FetchApp, socketPath: string): Promise<ControlServer> {
  const server = createAdaptorServer({ fetch: app.fetch as never }) as Server;
  await listenPrivateSocket(server, socketPath);
  return {
    path: socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/**
 * Listens on a unix socket that only root can use (mode 0600 from the moment
 * bind() creates it). A socket file left by a crashed daemon is replaced; a
 * live one is an error.
 */
export async function listenPrivateSocket(server: NetServer, socketPath: string): Promise<void> {
  await removeStaleSocket(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const previous = process.umask(0o177);
    try {
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
  chmodSync(socketPath, 0o600);
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw new Error(`another aerie-cloud daemon is already listening on ${path}`);
  rmSync(path, { force: true });
}

/** True if something accepts connections on the socket. */
export function answers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
