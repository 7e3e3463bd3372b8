// Blocklists for the VM's resolver: the compiled, immutable Blocklist the
// resolver asks on every query, and the ListManager that keeps it up to date.
// This file is the module's public face; the parts live beside it.

export interface Blocklist {
  /** Hot path. Wire name (RFC 1035 §3.1, uncompressed) at buf[offset]; ASCII case-insensitive. */
  isBlocked(buf: Uint8Array, offset: number): boolean;
  /** For `dns test NAME`: whether and why. ValidationError (field "name") if NAME is not a domain name. */
  explain(name: string): {
    name: string;
    blocked: boolean;
    reason: 'allowlist' | 'blocklist' | 'custom' | 'none';
    /** The listed name that matched: the name itself or a parent. */
    matched: string | null;
    /** Source id ('custom' for the owner's own blocks); null for the allowlist and for none. */
    list: string | null;
  };
  /** Distinct stored names (lists + custom). */
  readonly names: number;
  /** Memory of the compact structures: every typed array they hold. */
  readonly bytes: number;
}

export { createListManager } from './manager.ts';
export type { ListManager, ListManagerOptions, SourceStatus } from './manager.ts';
export { DEFAULT_SOURCES, type ListSource } from './sources.ts';
export { normalizeDomain } from './names.ts';
