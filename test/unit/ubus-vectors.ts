// Loads the recorded ubus traffic (see the vectors' README) for the
// conformance and fuzz tests.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const VECTORS_DIR = new URL('../../../shared/ubus-vectors/', import.meta.url);

export interface RecordedAttr {
  attr: string;
  id: number;
  len: number;
  value?: unknown;
  status?: string;
  blobmsg?: RecordedNode[];
  json?: unknown;
  not_blobmsg?: boolean;
}
export interface RecordedNode {
  type: string;
  name: string;
  value: unknown;
}
export interface FrameRecord {
  kind: 'frame';
  file: string;
  conn: number;
  dir: 'c2s' | 's2c';
  /** Index within the connection and direction. */
  n: number;
  version: number;
  type: number;
  type_name: string | null;
  seq: number;
  peer: number;
  blob_len: number;
  frame_len: number;
  hdr_hex: string;
  payload_hex: string;
  fds?: unknown;
  attrs: RecordedAttr[];
  bytes: Uint8Array;
}
export interface ConnectRecord {
  kind: 'connect';
  file: string;
  conn: number;
  cmd: string;
  exit_code?: number;
  stdout?: string;
  stderr?: string;
}

export function vectorFiles(): string[] {
  return readdirSync(fileURLToPath(VECTORS_DIR)).filter((f) => f.endsWith('.jsonl')).sort();
}

export function loadVectors(): { frames: FrameRecord[]; connects: ConnectRecord[] } {
  const frames: FrameRecord[] = [];
  const connects: ConnectRecord[] = [];
  for (const file of vectorFiles()) {
    const text = readFileSync(new URL(file, VECTORS_DIR), 'utf8');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as { kind: string };
      if (r.kind === 'frame') {
        const f = r as FrameRecord;
        frames.push({ ...f, file, bytes: new Uint8Array(Buffer.from(f.hdr_hex + f.payload_hex, 'hex')) });
      } else if (r.kind === 'connect') connects.push({ ...(r as ConnectRecord), file });
    }
  }
  return { frames, connects };
}
