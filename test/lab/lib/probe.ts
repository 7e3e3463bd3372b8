import { NODE24, REPO_ROOT, type Host, type Lab } from './lab.ts';

export interface ProbeResult {
  /** answer, connected, reset, refused, denied, unreachable, timeout or error (servers/port-probe.ts). */
  result: string;
  /** What the other end said, or the error code. */
  data: string;
  ms: number;
}

/** One TCP or UDP attempt to address:port from the host's namespace, and what came of it. */
export async function probePort(
  lab: Lab,
  host: Host,
  proto: 'tcp' | 'udp',
  address: string,
  port: number,
  timeoutMs = 2000,
  /** The local address to send from (one of the host's). */
  source?: string,
): Promise<ProbeResult> {
  const script = `${REPO_ROOT}/test/lab/servers/port-probe.ts`;
  const r = await lab.run(host, [NODE24, script, proto, address, String(port), String(timeoutMs), ...(source ? [source] : [])], { timeoutMs: timeoutMs + 10_000 });
  return JSON.parse(r.stdout) as ProbeResult;
}
