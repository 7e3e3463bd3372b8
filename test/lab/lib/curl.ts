import type { RunResult } from '../../../shared/run.ts';

export interface FetchOptions {
  /** Whole-request limit, passed to curl as --max-time (default 5000). */
  timeoutMs?: number;
  method?: string;
  headers?: Record<string, string>;
  /** Sent as the request body, through stdin. */
  body?: string;
  /** Accept any TLS certificate (the VM's pairing listener is self-signed). */
  insecure?: boolean;
  /** Send from this local address (curl --interface). */
  from?: string;
}

export interface FetchResult {
  /** A response arrived with a 2xx status. */
  ok: boolean;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  body: string;
  /** curl's own message when the request failed (no route, refused, timed out…). */
  error: string | null;
  /** curl's exit status: 7 could not connect, 28 timed out, … */
  curlExit: number;
}

// Printed after the body so the status can be split off without a temp file.
const MARK = '\n@@aerie-lab-status@@';

export function curlArgv(url: string, opts: FetchOptions = {}): string[] {
  const seconds = ((opts.timeoutMs ?? 5_000) / 1000).toFixed(3);
  const argv = ['curl', '--silent', '--show-error', '--globoff', '--noproxy', '*', '--max-time', seconds];
  argv.push('--write-out', `${MARK}%{http_code}`);
  if (opts.method) argv.push('--request', opts.method);
  for (const [k, v] of Object.entries(opts.headers ?? {})) argv.push('--header', `${k}: ${v}`);
  if (opts.body !== undefined) argv.push('--data-binary', '@-');
  if (opts.insecure) argv.push('--insecure');
  if (opts.from) argv.push('--interface', opts.from);
  argv.push('--', url);
  return argv;
}

export function parseCurl(r: RunResult): FetchResult {
  const at = r.stdout.lastIndexOf(MARK);
  const body = at >= 0 ? r.stdout.slice(0, at) : r.stdout;
  const status = at >= 0 ? Number(r.stdout.slice(at + MARK.length).trim()) || 0 : 0;
  const error = r.code === 0 ? null : r.stderr.trim() || `curl exited with status ${r.code}`;
  return { ok: r.code === 0 && status >= 200 && status < 300, status, body, error, curlExit: r.code };
}
