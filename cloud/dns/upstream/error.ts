/** An upstream exchange failed: timeout, refused connection, bad certificate, or every upstream failed. */
export class UpstreamError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}
