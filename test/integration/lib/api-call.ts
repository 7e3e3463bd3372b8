// One request to a Hono app as the caller at tunnel address `from` (the tests'
// identify reads it from a header), and the shape of the API's errors.

interface RequestApp {
  request(path: string, init: RequestInit): Response | Promise<Response>;
}

export async function callApi(app: RequestApp, method: string, path: string, from: string, body?: unknown) {
  const init: RequestInit = { method, headers: { 'x-test-from': from, 'content-type': 'application/json' } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await app.request(path, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) as Record<string, any> };
}

/** `{ "error": { "code", "message" } }` and nothing else, with this code (and a message matching `pattern`). */
export const isApiError = (json: Record<string, any>, code: string, pattern?: RegExp): boolean =>
  typeof json.error?.message === 'string' &&
  json.error.code === code &&
  Object.keys(json).length === 1 &&
  (!pattern || pattern.test(json.error.message));
