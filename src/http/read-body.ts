/**
 * Reads a request body within the size limit, and parses it as JSON with a depth limit;
 * finds text that stores cannot keep (NUL characters, unpaired surrogates).
 */
import type { Context } from 'hono';
import { invalidRequest, requestTooLarge } from '../errors/gateway-error.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';

/**
 * Bodies larger than this are decoded chunk by chunk as they arrive, and parsed in a turn
 * of the event loop of their own: decoding a 20 MB body in one go blocked it for ~100 ms.
 */
const LARGE_BODY_BYTES = 1024 * 1024;

/**
 * Reads the body as text within the size limit. With a `content-length` header (what the
 * SDKs send) the limit is checked before reading and the body is read through
 * @hono/node-server's direct fast path (up to LARGE_BODY_BYTES); a chunked or large body is
 * counted and decoded as it streams in.
 */
export async function readBodyText(context: Context, maxBytes: number): Promise<string> {
  const declared = context.req.header('content-length');
  if (declared !== undefined && context.req.header('transfer-encoding') === undefined) {
    if (Number(declared) > maxBytes) throw requestTooLarge(maxBytes);
    if (Number(declared) <= LARGE_BODY_BYTES) return context.req.text();
  }
  const body = context.req.raw.body;
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw requestTooLarge(maxBytes);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Deepest nesting of arrays and objects accepted in a JSON body. Far deeper than any real
 * request (OpenAI's own schemas stop at 10 levels), far shallower than what overflows the
 * stack of the recursive code that later walks the body (JSON.stringify, schema walkers).
 */
export const MAX_JSON_DEPTH = 128;

/** Whether `value` nests arrays and objects deeper than `limit` levels (checked without recursion). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  while (pending.length > 0) {
    const { node, depth } = pending.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') pending.push({ node: child, depth: depth + 1 });
    }
  }
  return false;
}

/** A NUL character or an unpaired surrogate (`\ud800` alone): text PostgreSQL cannot store. */
const UNSTORABLE = /\u0000|\p{Cs}/u;

/** Whether a string holds a NUL character or an unpaired surrogate. */
export function isUnstorableText(text: string): boolean {
  return UNSTORABLE.test(text);
}

/**
 * Where the first NUL character or unpaired surrogate is in `value` (in a string, or in an
 * object's key), as a path for `formatParam`, or null. Stores cannot keep them in text
 * (PostgreSQL refuses both, in text and in JSON).
 */
export function pathOfUnstorableText(value: unknown): PropertyKey[] | null {
  // Each entry links to its parent, so the path is built only once a NUL is found (copying it
  // at every level would be quadratic in the depth of a deeply nested body).
  interface Step {
    node: unknown;
    key: PropertyKey | null;
    parent: Step | null;
  }
  const pathOf = (step: Step, last?: PropertyKey): PropertyKey[] => {
    const reversed: PropertyKey[] = last === undefined ? [] : [last];
    for (let at: Step | null = step; at !== null && at.key !== null; at = at.parent) reversed.push(at.key);
    return reversed.reverse();
  };
  const pending: Step[] = [{ node: value, key: null, parent: null }];
  while (pending.length > 0) {
    const step = pending.pop()!;
    const { node } = step;
    if (typeof node === 'string') {
      if (isUnstorableText(node)) return pathOf(step);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) node.forEach((child, index) => pending.push({ node: child, key: index, parent: step }));
    else {
      for (const [key, child] of Object.entries(node)) {
        if (isUnstorableText(key)) return pathOf(step, key);
        pending.push({ node: child, key, parent: step });
      }
    }
  }
  return null;
}

/** Reads the body as JSON; a body that is not JSON is a 400, not a 500. */
export async function readJsonBody(context: Context, maxBytes: number): Promise<unknown> {
  const text = await readBodyText(context, maxBytes);
  context.set('rawBody', text);
  if (text.length === 0) throw invalidRequest('The request body is empty: send a JSON object.');
  const large = text.length > LARGE_BODY_BYTES;
  if (large) await yieldToEventLoop();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidRequest(
      'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload.)',
    );
  }
  if (large) await yieldToEventLoop();
  if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
    throw invalidRequest(`The JSON body of your request is nested too deeply: at most ${MAX_JSON_DEPTH} levels of arrays and objects are accepted.`, null, 'json_too_deep');
  }
  return body;
}
