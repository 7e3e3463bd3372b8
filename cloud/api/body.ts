import type { Context } from 'hono';
import { HttpError } from './errors.ts';
import { isJsonContentType, unsupportedMediaType } from './request-guard.ts';

export const DEFAULT_BODY_LIMIT = 8 * 1024;

/**
 * Reads a JSON request body of at most `limit` bytes. Refuses by the declared
 * Content-Length first, then counts while streaming (a chunked body has none).
 * An empty body is `undefined`; any other must be declared application/json
 * (a web page cannot send that cross-origin without a CORS preflight).
 */
export async function readJson(c: Context, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const tooLarge = () => new HttpError(413, 'payload_too_large', `the request body must be at most ${limit} bytes`);
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const stream = c.req.raw.body;
  if (!stream) return undefined;
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (size > 0 && !isJsonContentType(c.req.header('content-type'))) throw unsupportedMediaType();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `the request body is not valid JSON (${(err as Error).message})`);
  }
}
