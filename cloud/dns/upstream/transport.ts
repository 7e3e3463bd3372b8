/**
 * One upstream server reached one way. `exchange` sends `query` (never modified:
 * it sends a copy with an ID of its own) and resolves with the first answer
 * that matches it (see isAnswerTo), ID still the one it sent; anything else that
 * arrives is dropped. Rejects with an UpstreamError on timeout or when the
 * connection fails.
 */
export interface Transport {
  exchange(query: Uint8Array, qEnd: number, timeoutMs: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface TlsTrust {
  /** Extra PEM trust anchors on top of the default CAs. */
  ca?: string;
}
