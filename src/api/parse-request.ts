/**
 * Reads and validates a JSON request body. Failures become 400s in OpenAI's style, with
 * `param` naming the offending field (`messages[0].content`) and a message that says
 * what was expected.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { GatewayError, invalidRequest, missingParameter, requestTooLarge } from '../errors/gateway-error.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';

/**
 * Bodies larger than this are decoded chunk by chunk as they arrive, and parsed in a turn
 * of the event loop of their own: decoding a 20 MB body in one go blocked it for ~100 ms.
 */
const LARGE_BODY_BYTES = 1024 * 1024;

export function formatParam(path: ReadonlyArray<PropertyKey>): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text ? `.${String(segment)}` : String(segment);
  }
  return text;
}

type Issue = z.core.$ZodIssue;

/** The most specific issue: the one reaching deepest into the request. */
function deepestIssue(issue: Issue, prefix: PropertyKey[]): { issue: Issue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let best: { issue: Issue; path: PropertyKey[] } | null = null;
    for (const branch of issue.errors) {
      for (const nested of branch) {
        const candidate = deepestIssue(nested, path);
        if (!best || candidate.path.length > best.path.length) best = candidate;
      }
    }
    if (best && best.path.length > path.length) return best;
  }
  return { issue, path };
}

function quoteList(values: ReadonlyArray<unknown>): string {
  return values.map((value) => `'${String(value)}'`).join(', ');
}

export function issueToError(rootIssue: Issue): GatewayError {
  const { issue, path } = deepestIssue(rootIssue, []);
  const param = formatParam(path);
  switch (issue.code) {
    case 'invalid_type':
      if (/received undefined$/.test(issue.message)) return missingParameter(param);
      return invalidRequest(
        `Invalid type for '${param}': expected ${issue.expected === 'int' ? 'an integer' : `a value of type ${issue.expected}`}, but got ${issue.message.replace(/^.*received /, '')} instead.`,
        param,
        'invalid_type',
      );
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator && 'options' in issue && Array.isArray(issue.options)) {
        return invalidRequest(`Invalid value for '${param}': expected one of ${quoteList(issue.options)}.`, param, 'invalid_value');
      }
      return invalidRequest(`Invalid value for '${param}'.`, param, 'invalid_value');
    case 'invalid_value':
      return invalidRequest(`Invalid value for '${param}': expected one of ${quoteList(issue.values)}.`, param, 'invalid_value');
    case 'too_big':
      if (issue.origin === 'array') return invalidRequest(`Invalid '${param}': array too long. Expected an array with maximum length ${String(issue.maximum)}.`, param, 'array_above_max_length');
      if (issue.origin === 'string') return invalidRequest(`Invalid '${param}': string too long. Expected a string with maximum length ${String(issue.maximum)}.`, param, 'string_above_max_length');
      return invalidRequest(`Invalid '${param}': expected a value <= ${String(issue.maximum)}.`, param, 'value_above_maximum');
    case 'too_small':
      if (issue.origin === 'array') return invalidRequest(`Invalid '${param}': empty array. Expected an array with minimum length ${String(issue.minimum)}.`, param, 'array_below_min_length');
      if (issue.origin === 'string') return invalidRequest(`Invalid '${param}': string too short. Expected a string with minimum length ${String(issue.minimum)}.`, param, 'string_below_min_length');
      return invalidRequest(`Invalid '${param}': expected a value >= ${String(issue.minimum)}.`, param, 'value_below_minimum');
    default:
      return invalidRequest(`Invalid '${param}': ${issue.message}.`, param, 'invalid_value');
  }
}

export function parseWith<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw issueToError(result.error.issues[0]!);
}

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

/** Reads the body as JSON; a body that is not JSON is a 400, not a 500. */
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
