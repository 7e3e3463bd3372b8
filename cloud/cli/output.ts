import { renderUnicodeCompact } from 'uqr';
import type { CloudStatus, DeviceInfo } from '../../shared/schemas.ts';

/** A QR code drawn with half-block characters, for a terminal. */
export function qr(text: string): string {
  return renderUnicodeCompact(text, { border: 2 });
}

/** "3 s ago", "never": how long since the last WireGuard handshake. */
export function handshakeAge(latestHandshake: number, nowMs = Date.now()): string {
  if (!latestHandshake) return 'never';
  const s = Math.max(0, Math.round(nowMs / 1000 - latestHandshake));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export function deviceTable(devices: DeviceInfo[], nowMs = Date.now()): string {
  if (devices.length === 0) return 'No devices yet. Pair a router with `aerie-cloud pair`, add a phone with `aerie-cloud device add NAME`.';
  const rows = [['NAME', 'ROLE', 'ADDRESSES', 'HOME PREFIXES', 'HANDSHAKE', 'RX', 'TX']];
  for (const d of devices) {
    rows.push([
      d.name,
      d.role,
      d.addresses.join(' '),
      d.lanPrefixes.join(' ') || '-',
      handshakeAge(d.latestHandshake, nowMs),
      bytes(d.rxBytes),
      bytes(d.txBytes),
    ]);
  }
  return table(rows);
}

export function statusText(s: CloudStatus, daemon: boolean, nowMs = Date.now()): string {
  return [
    `daemon:     ${daemon ? 'running' : 'not running (start it with `aerie-cloud serve`)'}`,
    `interface:  ${s.interface} (listening on UDP ${s.listenPort})`,
    `public key: ${s.publicKey}`,
    `endpoint:   ${s.endpoint}`,
    `overlay:    ${s.overlay.join(', ')}`,
    '',
    deviceTable(s.peers, nowMs),
  ].join('\n');
}
