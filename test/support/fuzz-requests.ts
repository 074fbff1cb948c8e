/**
 * Mutated HTTP requests for the fuzz contract test (test/contract/fuzz.test.ts): every route
 * the app serves, each starting from a valid request of a small corpus, then 0–3 mutations
 * drawn with a seeded generator (fields dropped, added or of the wrong type, huge, negative or
 * NaN-ish numbers, deep nesting, unicode and NUL, truncated or re-encoded JSON, wrong
 * content types, broken multipart bodies, bad query strings and ids, wrong methods, other
 * credentials). The same seed gives the same sequence of requests.
 */
import type { SeededRandom } from './seeded-random.js';

/** Bytes of a body (fetch and Blob take an ArrayBuffer-backed view). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Who sends the request. */
export type Credential = 'master' | 'limited' | 'token' | 'invalid' | 'none' | 'malformed';

export interface FuzzCredentials {
  master: string;
  /** A key limited to some models, its own project and a rate limit. */
  limited: string;
  /** A short-lived token minted by the limited key. */
  token: string;
}

/** Ids the requests refer to: those made at the start, plus those created by the run. */
export interface FuzzPools {
  models: string[];
  batchFiles: string[];
  fineTuneFiles: string[];
  /** Files the run may delete (its own uploads). */
  spareFiles: string[];
  batches: string[];
  jobs: string[];
  /**
   * Keys other than the limited one, which the run may rotate, revoke or delete (the limited
   * key's id is in no path: a mutated method could revoke it and end its share of the run).
   */
  spareKeys: string[];
}

export interface FuzzRequest {
  /** The route template, e.g. `GET /v1/files/{id}` (for coverage counts). */
  route: string;
  method: string;
  /** Path and query, from the origin (e.g. `/v1/files?limit=2`). */
  path: string;
  headers: Record<string, string>;
  body?: Bytes;
  /** Send the body in pieces without a content-length (chunked transfer encoding). */
  chunked?: boolean;
  /** What was changed from the valid request (for the failure report). */
  mutations: string[];
}

type BodyKind = 'json' | 'optional-json' | 'multipart' | 'none';

interface RouteSpec {
  route: string;
  method: string;
  path: (random: SeededRandom, pools: FuzzPools) => string;
  body: BodyKind;
  /** Valid bodies (JSON values) or valid multipart forms. */
  corpus?: (random: SeededRandom, pools: FuzzPools) => unknown;
  /** Valid query strings (without `?`); '' for none. */
  queries?: string[];
  /** The usual caller. */
  credential: Credential;
}

const MODEL = 'gpt-4o-mini';
const EMBED = 'mock-embed';
const any = (random: SeededRandom, items: string[], fallback: string) => (items.length > 0 ? random.pick(items) : fallback);
const enc = encodeURIComponent;

const chatBodies = (random: SeededRandom): unknown =>
  random.pick([
    { model: MODEL, messages: [{ role: 'user', content: 'Hello' }] },
    { model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }], temperature: 0.2, max_tokens: 16, top_p: 1, n: 1, user: 'u-1' },
    { model: MODEL, messages: [{ role: 'user', content: 'Stream it' }], stream: true, stream_options: { include_usage: true } },
    { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }], seed: 7, stop: ['\n'], presence_penalty: 0, frequency_penalty: 0 },
    {
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [{ type: 'function', function: { name: 'weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
      tool_choice: 'auto',
    },
    {
      model: MODEL,
      messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false } } },
    },
    { model: MODEL, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'More' }], logprobs: true, top_logprobs: 2, metadata: { a: 'b' } },
  ]);

const completionBodies = (random: SeededRandom): unknown =>
  random.pick([
    { model: MODEL, prompt: 'Say hi', max_tokens: 5 },
    { model: MODEL, prompt: ['one', 'two'], n: 1, temperature: 0 },
    { model: MODEL, prompt: 'Stream', stream: true, stream_options: { include_usage: true } },
    { model: MODEL, prompt: 'Echo', echo: true, suffix: '!', stop: 'x' },
  ]);

const embeddingBodies = (random: SeededRandom): unknown =>
  random.pick([
    { model: EMBED, input: 'hello' },
    { model: EMBED, input: ['a', 'b', 'c'], encoding_format: 'base64' },
    { model: EMBED, input: [1, 2, 3] },
    { model: EMBED, input: 'dims', dimensions: 8, user: 'u' },
  ]);

const moderationBodies = (random: SeededRandom): unknown =>
  random.pick([{ input: 'hello' }, { input: ['a', 'b'], model: MODEL }, { input: [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }]);

const BATCH_LINE = JSON.stringify({ custom_id: 'r1', method: 'POST', url: '/v1/chat/completions', body: { model: MODEL, messages: [{ role: 'user', content: 'Hi' }] } });
const TRAINING_LINE = JSON.stringify({ messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] });

/** A multipart form: parts in order. */
export interface Form {
  parts: Array<{ name: string; filename?: string; contentType?: string; data: string | Bytes }>;
}

export const validForms = {
  batch: (): Form => ({ parts: [{ name: 'purpose', data: 'batch' }, { name: 'file', filename: 'requests.jsonl', contentType: 'application/jsonl', data: `${BATCH_LINE}\n` }] }),
  fineTune: (): Form => ({ parts: [{ name: 'file', filename: 'train.jsonl', contentType: 'application/octet-stream', data: `${TRAINING_LINE}\n${TRAINING_LINE}\n` }, { name: 'purpose', data: 'fine-tune' }] }),
};

const formBodies = (random: SeededRandom): Form =>
  random.pick([
    validForms.batch(),
    validForms.fineTune(),
    { parts: [{ name: 'purpose', data: 'user_data' }, { name: 'file', filename: 'notes.txt', contentType: 'text/plain', data: 'plain text ✓' }] },
    { parts: [{ name: 'purpose', data: 'assistants' }, { name: 'extra', data: 'ignored' }, { name: 'file', filename: 'b.bin', data: new Uint8Array([0, 1, 2, 255, 254]) }] },
  ]);

const keyBodies = (random: SeededRandom): unknown =>
  random.pick([
    { name: 'fuzz-key' },
    { name: 'fuzz-limited', models: [MODEL], endpoints: ['/v1/chat/*'], rpm: 100, tpm: 10_000, metadata: { team: 'fuzz' } },
    { name: 'fuzz-project', project: 'fuzz-b', budget_usd: 5, budget_period: 'day', expires_in_days: 1, cache: 'off' },
    { name: 'fuzz-net', ips: ['127.0.0.1', '10.0.0.0/8'], origins: ['https://example.com'], admin: false, guardrails: { deny_input: ['forbidden'] } },
  ]);

const patchBodies = (random: SeededRandom): unknown =>
  random.pick([{ name: 'renamed' }, { rpm: null, models: ['gpt-*'] }, { metadata: { a: 'b' }, budget_usd: null }, {}]);

const tokenBodies = (random: SeededRandom): unknown =>
  random.pick([{}, { expires_in_minutes: 5 }, { expires_in_minutes: 1, models: [MODEL], rpm: 10 }, { endpoints: ['/v1/chat/completions'], origins: [] }]);

const batchBodies = (random: SeededRandom, pools: FuzzPools): unknown =>
  random.pick([
    { input_file_id: any(random, pools.batchFiles, 'file-none'), endpoint: '/v1/chat/completions', completion_window: '24h' },
    { input_file_id: any(random, pools.batchFiles, 'file-none'), endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'fuzz' } },
    { input_file_id: any(random, pools.batchFiles, 'file-none'), endpoint: '/v1/embeddings', completion_window: '24h', output_expires_after: { anchor: 'created_at', seconds: 3600 } },
  ]);

const jobBodies = (random: SeededRandom, pools: FuzzPools): unknown =>
  random.pick([
    { model: MODEL, training_file: any(random, pools.fineTuneFiles, 'file-none') },
    { model: MODEL, training_file: any(random, pools.fineTuneFiles, 'file-none'), hyperparameters: { n_epochs: 1, batch_size: 'auto', learning_rate_multiplier: 0.5 }, suffix: 'fz', seed: 3, metadata: { a: 'b' } },
    { model: MODEL, training_file: any(random, pools.fineTuneFiles, 'file-none'), validation_file: any(random, pools.fineTuneFiles, 'file-none'), method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2 } } } },
  ]);

const PAGING = ['', 'limit=2', 'limit=100', 'after=x'];

export const ROUTES: RouteSpec[] = [
  { route: 'POST /v1/chat/completions', method: 'POST', path: () => '/v1/chat/completions', body: 'json', corpus: chatBodies, credential: 'master' },
  { route: 'POST /v1/completions', method: 'POST', path: () => '/v1/completions', body: 'json', corpus: completionBodies, credential: 'master' },
  { route: 'POST /v1/embeddings', method: 'POST', path: () => '/v1/embeddings', body: 'json', corpus: embeddingBodies, credential: 'master' },
  { route: 'POST /v1/moderations', method: 'POST', path: () => '/v1/moderations', body: 'json', corpus: moderationBodies, credential: 'master' },
  { route: 'GET /v1/models', method: 'GET', path: () => '/v1/models', body: 'none', credential: 'master' },
  { route: 'GET /v1/models/{id}', method: 'GET', path: (r, p) => `/v1/models/${enc(r.pick(p.models))}`, body: 'none', credential: 'master' },
  { route: 'DELETE /v1/models/{id}', method: 'DELETE', path: (r) => `/v1/models/${enc(r.pick(['ft:gpt-4o-mini:fuzz::abc', MODEL, 'nope']))}`, body: 'none', credential: 'master' },
  { route: 'GET /v1/files', method: 'GET', path: () => '/v1/files', body: 'none', queries: ['', 'purpose=batch', 'limit=3&order=asc', 'purpose=batch_output&after=file-x', 'order=desc'], credential: 'master' },
  { route: 'POST /v1/files', method: 'POST', path: () => '/v1/files', body: 'multipart', corpus: formBodies, credential: 'master' },
  { route: 'GET /v1/files/{id}', method: 'GET', path: (r, p) => `/v1/files/${enc(any(r, [...p.batchFiles, ...p.spareFiles], 'file-none'))}`, body: 'none', credential: 'master' },
  { route: 'GET /v1/files/{id}/content', method: 'GET', path: (r, p) => `/v1/files/${enc(any(r, [...p.batchFiles, ...p.fineTuneFiles], 'file-none'))}/content`, body: 'none', credential: 'master' },
  { route: 'DELETE /v1/files/{id}', method: 'DELETE', path: (r, p) => `/v1/files/${enc(any(r, p.spareFiles, 'file-none'))}`, body: 'none', credential: 'master' },
  { route: 'GET /v1/batches', method: 'GET', path: () => '/v1/batches', body: 'none', queries: PAGING, credential: 'master' },
  { route: 'POST /v1/batches', method: 'POST', path: () => '/v1/batches', body: 'json', corpus: batchBodies, credential: 'master' },
  { route: 'GET /v1/batches/{id}', method: 'GET', path: (r, p) => `/v1/batches/${enc(any(r, p.batches, 'batch_none'))}`, body: 'none', credential: 'master' },
  { route: 'POST /v1/batches/{id}/cancel', method: 'POST', path: (r, p) => `/v1/batches/${enc(any(r, p.batches, 'batch_none'))}/cancel`, body: 'none', credential: 'master' },
  { route: 'GET /v1/fine_tuning/jobs', method: 'GET', path: () => '/v1/fine_tuning/jobs', body: 'none', queries: PAGING, credential: 'master' },
  { route: 'POST /v1/fine_tuning/jobs', method: 'POST', path: () => '/v1/fine_tuning/jobs', body: 'json', corpus: jobBodies, credential: 'master' },
  { route: 'GET /v1/fine_tuning/jobs/{id}', method: 'GET', path: (r, p) => `/v1/fine_tuning/jobs/${enc(any(r, p.jobs, 'ftjob-none'))}`, body: 'none', credential: 'master' },
  ...(['cancel', 'pause', 'resume'] as const).map(
    (action): RouteSpec => ({ route: `POST /v1/fine_tuning/jobs/{id}/${action}`, method: 'POST', path: (r, p) => `/v1/fine_tuning/jobs/${enc(any(r, p.jobs, 'ftjob-none'))}/${action}`, body: 'none', credential: 'master' }),
  ),
  ...(['events', 'checkpoints'] as const).map(
    (list): RouteSpec => ({ route: `GET /v1/fine_tuning/jobs/{id}/${list}`, method: 'GET', path: (r, p) => `/v1/fine_tuning/jobs/${enc(any(r, p.jobs, 'ftjob-none'))}/${list}`, body: 'none', queries: PAGING, credential: 'master' }),
  ),
  { route: 'POST /v1/tokens', method: 'POST', path: () => '/v1/tokens', body: 'optional-json', corpus: tokenBodies, credential: 'limited' },
  { route: 'GET /admin/keys', method: 'GET', path: () => '/admin/keys', body: 'none', queries: ['', 'limit=2', 'include_revoked=true', 'after=key_x&limit=1'], credential: 'master' },
  { route: 'POST /admin/keys', method: 'POST', path: () => '/admin/keys', body: 'json', corpus: keyBodies, credential: 'master' },
  { route: 'GET /admin/keys/{id}', method: 'GET', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}`, body: 'none', credential: 'master' },
  { route: 'PATCH /admin/keys/{id}', method: 'PATCH', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}`, body: 'optional-json', corpus: patchBodies, credential: 'master' },
  { route: 'DELETE /admin/keys/{id}', method: 'DELETE', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}`, body: 'none', credential: 'master' },
  { route: 'POST /admin/keys/{id}/rotate', method: 'POST', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}/rotate`, body: 'optional-json', corpus: (r) => r.pick([{}, { grace_seconds: 0 }, { grace_seconds: 60 }]), credential: 'master' },
  { route: 'POST /admin/keys/{id}/revoke', method: 'POST', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}/revoke`, body: 'none', credential: 'master' },
  { route: 'POST /admin/keys/{id}/tokens', method: 'POST', path: (r, p) => `/admin/keys/${enc(any(r, p.spareKeys, 'key_none'))}/tokens`, body: 'optional-json', corpus: tokenBodies, credential: 'master' },
  { route: 'GET /admin/usage', method: 'GET', path: () => '/admin/usage', body: 'none', queries: ['', 'group_by=model', 'group_by=key,model,user&from=2020-01-01&to=2100-01-01', 'status=200&model=gpt-4o-mini', 'from=0'], credential: 'master' },
  { route: 'GET /admin/logs', method: 'GET', path: () => '/admin/logs', body: 'none', queries: ['', 'limit=5', 'limit=1&before=10', 'format=jsonl&status=404', 'path=/v1/models&user=u-1'], credential: 'master' },
  { route: 'GET /admin/audit/verify', method: 'GET', path: () => '/admin/audit/verify', body: 'none', credential: 'master' },
  { route: 'DELETE /admin/users/{user}', method: 'DELETE', path: (r) => `/admin/users/${enc(r.pick(['u-1', 'nobody', 'user@example.com']))}`, body: 'none', credential: 'master' },
  { route: 'GET /metrics', method: 'GET', path: () => '/metrics', body: 'none', credential: 'master' },
  { route: 'GET /health', method: 'GET', path: () => '/health', body: 'none', credential: 'none' },
  { route: 'GET (unknown route)', method: 'GET', path: (r) => r.pick(['/v1/nope', '/admin/nope', '/', '/v2/models', '/v1/chat/completions/extra', '/v1/files/a/b/c']), body: 'none', credential: 'master' },
];

// ---------------------------------------------------------------------------------------------
// Values

/**
 * A deeply nested value. Deep ones are a placeholder string, replaced by the nested text once
 * the body is serialized (JSON.stringify would overflow this process's stack first).
 */
function deepNesting(random: SeededRandom): unknown {
  const depth = random.pick([64, 1_000, 5_000, 50_000]);
  const asArray = random.chance(0.5);
  return `${DEEP_MARK}${depth}:${asArray ? 'a' : 'o'}${DEEP_MARK}`;
}

const DEEP_MARK = '@@deep@@';
const DEEP_PATTERN = new RegExp(`"${DEEP_MARK}(\\d+):([ao])${DEEP_MARK}"`, 'g');

/** The JSON text with each deep-nesting placeholder replaced by its nested value. */
function expandDeepNesting(text: string): string {
  return text.replace(DEEP_PATTERN, (_match, depth: string, kind: string) => {
    const count = Number(depth);
    return kind === 'a' ? `${'['.repeat(count)}"leaf"${']'.repeat(count)}` : `${'{"a":'.repeat(count)}1${'}'.repeat(count)}`;
  });
}

const WEIRD_STRINGS = [
  '',
  ' ',
  'x',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff\ud800',
  '🙂👍🏽',
  'ñandú',
  '\u202e\u200b\ufeff',
  '<script>alert(1)</script>',
  "'; DROP TABLE keys; --",
  '../../etc/passwd',
  '%00%ZZ',
  '\r\n\r\nX-Injected: 1',
  'null',
  'NaN',
  'Infinity',
  '-0',
  '1e999',
  '{"nested":"json"}',
];

const WEIRD_NUMBERS = [0, -0, -1, 1, 0.5, -0.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, Number.MIN_VALUE, 1e21, 4_294_967_296, 99_999_999_999];

/** A value of a random kind (the wrong type for most fields). */
export function junkValue(random: SeededRandom): unknown {
  switch (random.int(0, 11)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
    case 3:
      return random.pick(WEIRD_NUMBERS);
    case 4:
    case 5:
      return random.pick(WEIRD_STRINGS);
    case 6:
      return 'z'.repeat(random.pick([100, 5_000, 40_000]));
    case 7:
      return [];
    case 8:
      return {};
    case 9:
      return Array.from({ length: random.pick([3, 300, 3_000]) }, (_, i) => (random.chance(0.5) ? i : String(i)));
    case 10:
      return deepNesting(random);
    default:
      return { [random.pick(WEIRD_STRINGS) || 'k']: random.pick(WEIRD_STRINGS) };
  }
}

// ---------------------------------------------------------------------------------------------
// JSON mutations (on the value)

type Container = Record<string, unknown> | unknown[];
const isContainer = (value: unknown): value is Container => value !== null && typeof value === 'object';

/** A random container inside `root` (root included), walking down at most a few levels. */
function randomContainer(random: SeededRandom, root: Container): Container {
  let current: Container = root;
  for (let depth = 0; depth < 4; depth++) {
    const children = Object.values(current).filter(isContainer);
    if (children.length === 0 || random.chance(0.35)) break;
    current = random.pick(children);
  }
  return current;
}

function mutateValue(random: SeededRandom, value: unknown, notes: string[]): unknown {
  if (!isContainer(value) || random.chance(0.08)) {
    notes.push('body: replaced by junk');
    return junkValue(random);
  }
  const target = randomContainer(random, value);
  const keys = Object.keys(target);
  const action = random.int(0, 5);
  if (action === 0 && keys.length > 0) {
    const key = random.pick(keys);
    if (Array.isArray(target)) target.splice(Number(key), 1);
    else delete target[key];
    notes.push(`json: dropped ${key}`);
  } else if (action === 1 || keys.length === 0) {
    const key = random.pick(['extra', 'model', 'stream', 'n', 'max_tokens', 'input', 'messages', 'purpose', 'limit', '__proto__', 'constructor', random.pick(WEIRD_STRINGS)]);
    const junk = junkValue(random);
    if (Array.isArray(target)) target.push(junk);
    else target[key] = junk;
    notes.push(`json: added ${JSON.stringify(key)}`);
  } else if (action === 2) {
    const key = random.pick(keys);
    (target as Record<string, unknown>)[key] = junkValue(random);
    notes.push(`json: junk in ${key}`);
  } else if (action === 3) {
    const key = random.pick(keys);
    (target as Record<string, unknown>)[key] = random.pick(WEIRD_NUMBERS);
    notes.push(`json: number in ${key}`);
  } else if (action === 4) {
    const key = random.pick(keys);
    (target as Record<string, unknown>)[key] = deepNesting(random);
    notes.push(`json: deep nesting in ${key}`);
  } else {
    const key = random.pick(keys);
    const current = (target as Record<string, unknown>)[key];
    (target as Record<string, unknown>)[key] = typeof current === 'string' ? current + random.pick(WEIRD_STRINGS) : [current, current];
    notes.push(`json: grew ${key}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// JSON mutations (on the text)

const utf8 = (text: string): Bytes => new TextEncoder().encode(text) as Bytes;

function mutateJsonText(random: SeededRandom, text: string, notes: string[]): Bytes {
  const action = random.int(0, 11);
  switch (action) {
    case 0: {
      const cut = random.int(0, Math.max(0, text.length - 1));
      notes.push(`text: truncated at ${cut}`);
      return utf8(text.slice(0, cut));
    }
    case 1:
      notes.push('text: NaN literal');
      return utf8(text.replace(/:\s*(-?\d+(\.\d+)?|true|false|null|"[^"]*")/, ': NaN'));
    case 2:
      notes.push('text: Infinity literal');
      return utf8(text.replace(/\d+/, 'Infinity'));
    case 3:
      notes.push('text: duplicated keys');
      return utf8(text.replace(/^\{/, `{"model":1,"model":"x",`));
    case 4:
      notes.push('text: trailing garbage');
      return utf8(`${text}}{"x":1}`);
    case 5:
      notes.push('text: BOM');
      return utf8(`\ufeff${text}`);
    case 6: {
      notes.push('text: UTF-16');
      const bytes = new Uint8Array(text.length * 2);
      for (let i = 0; i < text.length; i++) {
        bytes[i * 2] = text.charCodeAt(i) & 0xff;
        bytes[i * 2 + 1] = text.charCodeAt(i) >> 8;
      }
      return bytes;
    }
    case 7: {
      notes.push('text: invalid UTF-8 bytes');
      const bytes = utf8(text);
      const at = random.int(0, bytes.length);
      return new Uint8Array([...bytes.slice(0, at), 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, ...bytes.slice(at)]);
    }
    case 8:
      notes.push('text: raw NUL and control characters');
      return utf8(text.replace(/"([^"]*)"/, '"\u0000\u0001\u001f$1"'));
    case 9: {
      const depth = random.pick([10_000, 100_000]);
      notes.push(`text: ${depth} unclosed brackets`);
      return utf8('['.repeat(depth));
    }
    case 10:
      notes.push('text: not an object');
      return utf8(random.pick(['', ' ', 'null', '[]', '"text"', '42', 'true', '[{}]', '{', '}', 'undefined']));
    default:
      notes.push('text: over the body limit');
      return utf8(`{"pad":"${'p'.repeat(300_000)}",${text.slice(1)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Multipart

function formBytes(form: Form, boundary: string, lineBreak = '\r\n', closing = true): Bytes {
  const chunks: Bytes[] = [];
  for (const part of form.parts) {
    let head = `--${boundary}${lineBreak}Content-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += lineBreak;
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}${lineBreak}`;
    chunks.push(utf8(`${head}${lineBreak}`), typeof part.data === 'string' ? utf8(part.data) : part.data, utf8(lineBreak));
  }
  if (closing) chunks.push(utf8(`--${boundary}--${lineBreak}`));
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function multipartRequest(random: SeededRandom, form: Form, mutate: boolean, notes: string[]): { body: Bytes; contentType: string } {
  let boundary = `----fuzz${random.int(0, 1e9)}`;
  let contentType = `multipart/form-data; boundary=${boundary}`;
  let lineBreak = '\r\n';
  let closing = true;
  if (!mutate) return { body: formBytes(form, boundary), contentType };
  const parts = form.parts;
  const action = random.int(0, 15);
  switch (action) {
    case 0: {
      const part = random.pick(parts);
      parts.push({ ...part });
      notes.push(`multipart: duplicated ${part.name}`);
      break;
    }
    case 1: {
      const index = random.int(0, parts.length - 1);
      notes.push(`multipart: dropped ${parts[index]!.name}`);
      parts.splice(index, 1);
      break;
    }
    case 2:
      contentType = random.pick(['multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; charset=utf-8']);
      notes.push(`multipart: content-type ${contentType}`);
      break;
    case 3:
      contentType = `multipart/form-data; boundary=other${boundary}`;
      notes.push('multipart: wrong boundary');
      break;
    case 4: {
      const full = formBytes(form, boundary);
      const cut = random.int(0, full.byteLength - 1);
      notes.push(`multipart: truncated at ${cut}`);
      return { body: full.slice(0, cut), contentType };
    }
    case 5:
      closing = false;
      notes.push('multipart: no closing boundary');
      break;
    case 6:
      lineBreak = '\n';
      notes.push('multipart: LF line breaks');
      break;
    case 7: {
      const part = parts.find((p) => p.name === 'purpose');
      if (part) part.data = String(junkValue(random));
      notes.push('multipart: junk purpose');
      break;
    }
    case 8: {
      const part = parts.find((p) => p.filename !== undefined);
      if (part) part.filename = random.pick(WEIRD_STRINGS.concat(['a"b', 'x'.repeat(5_000), 'name\r\nContent-Type: text/html']));
      notes.push('multipart: odd filename');
      break;
    }
    case 9: {
      const part = parts.find((p) => p.filename !== undefined);
      if (part) part.data = random.pick([new Uint8Array(0), new Uint8Array(70_000).fill(0x61), utf8('{"not":"jsonl"'), new Uint8Array([0, 0, 0, 0xff])]);
      notes.push('multipart: odd file content');
      break;
    }
    case 10:
      parts.push({ name: 'purpose', data: 'p'.repeat(random.pick([2_000, 70_000])) });
      notes.push('multipart: long text field');
      break;
    case 11:
      boundary = random.pick(['x', 'b'.repeat(200), 'with space', '"quoted"', '\u00e9t\u00e9']);
      contentType = `multipart/form-data; boundary=${boundary}`;
      notes.push(`multipart: boundary ${JSON.stringify(boundary.slice(0, 20))}`);
      break;
    case 12:
      notes.push('multipart: header without disposition');
      return { body: utf8(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nbatch\r\n--${boundary}--\r\n`), contentType };
    case 13:
      notes.push('multipart: body is JSON');
      return { body: utf8('{"purpose":"batch","file":"x"}'), contentType: random.pick([contentType, 'application/json']) };
    case 14:
      notes.push('multipart: garbage between parts');
      return { body: utf8(`preamble\r\n--${boundary}\r\n\r\n\r\n--${boundary}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--${boundary}--garbage`), contentType };
    default:
      parts.reverse();
      notes.push('multipart: parts reversed');
  }
  return { body: formBytes(form, boundary, lineBreak, closing), contentType };
}

// ---------------------------------------------------------------------------------------------
// Query strings, ids, methods, headers

const BAD_QUERIES = [
  'limit=-1',
  'limit=0',
  'limit=abc',
  'limit=1e3',
  'limit=101',
  'limit=99999999999999999999',
  'limit=1&limit=2',
  'after=%00',
  'after=%ZZ',
  'after=%',
  'after=%E0%A4%A',
  'purpose=nope',
  'order=sideways',
  'format=xml',
  'group_by=nothing',
  'group_by=,,,',
  'from=yesterday',
  'to=-1',
  'status=99x',
  'before=-1',
  'include_revoked=maybe',
  'user=%F0%9F%99%82',
  '&&&==&',
  '=',
  `q=${'a'.repeat(6_000)}`,
  'limit[]=1',
  'limit=%20%202',
];

const BAD_IDS = ['', ' ', '%00', '%2F', '%2E%2E', '..', 'ñ', '%F0%9F%99%82', '%ZZ', 'a'.repeat(3_000), 'file-', 'null', 'undefined', '__proto__', 'a%20b', 'x;drop', "'"];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PURGE'];

const CONTENT_TYPES = [
  'text/plain',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded',
  'application/jsonl',
  'multipart/form-data',
  'application/json; boundary=x',
  '',
  ';;;',
  'application/json, text/plain',
];

function authorization(credential: Credential, credentials: FuzzCredentials, random: SeededRandom): string | undefined {
  switch (credential) {
    case 'master':
      return `Bearer ${credentials.master}`;
    case 'limited':
      return `Bearer ${credentials.limited}`;
    case 'token':
      return `Bearer ${credentials.token}`;
    case 'invalid':
      return `Bearer ${random.pick(['sk-invalid', 'cg-nope', 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA', `${credentials.token}x`, `${credentials.token.split('.').slice(0, 2).join('.')}.`, 'a'.repeat(4_000)])}`;
    case 'malformed':
      return random.pick(['Bearer', 'Bearer ', 'Basic dXNlcjpwdw==', `bearer  ${credentials.master}`, credentials.master, `Bearer ${credentials.master} extra`, 'Bearer \u00e9']);
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The generator

export interface GenerateOptions {
  random: SeededRandom;
  credentials: FuzzCredentials;
  pools: FuzzPools;
  /** Probability that a request goes out unmutated (keeps valid traffic, and ids, flowing). */
  validShare?: number;
}

/** One request: a valid one of a random route, then 0–3 mutations. */
export function nextRequest({ random, credentials, pools, validShare = 0.12 }: GenerateOptions): FuzzRequest {
  const spec = random.pick(ROUTES);
  const notes: string[] = [];
  let method = spec.method;
  let path = spec.path(random, pools);
  let query = spec.queries ? random.pick(spec.queries) : '';
  let credential: Credential = spec.credential === 'master' && random.chance(0.25) ? random.pick(['limited', 'token'] as const) : spec.credential;
  const headers: Record<string, string> = {};
  let body: Bytes | undefined;
  let contentType: string | undefined;

  const mutate = !random.chance(validShare);
  const count = mutate ? random.int(1, 3) : 0;
  const kinds = new Set<string>();
  for (let i = 0; i < count; i++) {
    const bodyWeight = spec.body === 'none' ? 0 : 5;
    const roll = random.int(0, bodyWeight + 6);
    if (roll < bodyWeight) kinds.add('body');
    else kinds.add(random.pick(['query', 'id', 'method', 'credential', 'header', 'body-type']));
  }

  // Body
  if (spec.body === 'json' || spec.body === 'optional-json') {
    let value = spec.corpus!(random, pools);
    value = JSON.parse(JSON.stringify(value)) as unknown;
    if (spec.body === 'optional-json' && !kinds.has('body') && random.chance(0.3)) {
      body = undefined;
    } else {
      if (kinds.has('body') && random.chance(0.6)) value = mutateValue(random, value, notes);
      const text = expandDeepNesting(JSON.stringify(value) ?? '');
      body = kinds.has('body') && (notes.length === 0 || random.chance(0.3)) ? mutateJsonText(random, text, notes) : utf8(text);
      contentType = 'application/json';
    }
  } else if (spec.body === 'multipart') {
    const form = spec.corpus!(random, pools) as Form;
    const built = multipartRequest(random, form, kinds.has('body'), notes);
    body = built.body;
    contentType = built.contentType;
  }
  if (kinds.has('body-type')) {
    if (body === undefined) {
      body = utf8(random.pick(['{"x":1}', 'plain', '\u0000']));
      notes.push('body on a route without one');
    }
    contentType = random.pick(CONTENT_TYPES);
    notes.push(`content-type ${JSON.stringify(contentType)}`);
  }

  // Query
  if (kinds.has('query')) {
    const bad = random.pick(BAD_QUERIES);
    query = query && random.chance(0.5) ? `${query}&${bad}` : bad;
    notes.push(`query ${bad.slice(0, 40)}`);
  }

  // Id in the path (the last segment that is an id, or one appended)
  if (kinds.has('id')) {
    const bad = random.pick(BAD_IDS);
    const segments = path.split('/');
    const known = ['v1', 'admin', 'chat', 'completions', 'embeddings', 'moderations', 'models', 'files', 'content', 'batches', 'cancel', 'fine_tuning', 'jobs', 'pause', 'resume', 'events', 'checkpoints', 'tokens', 'keys', 'rotate', 'revoke', 'usage', 'logs', 'audit', 'verify', 'users', 'metrics', 'health', ''];
    const index = segments.findIndex((segment, i) => i > 0 && !known.includes(segment));
    if (index > 0) segments[index] = bad;
    else segments.push(bad);
    path = random.chance(0.1) ? segments.join('/').replace('/v1/', '//v1//') : segments.join('/');
    notes.push(`id ${bad.slice(0, 20)}`);
  }

  // Method
  if (kinds.has('method')) {
    method = random.pick(METHODS.filter((m) => m !== spec.method));
    notes.push(`method ${method}`);
  }

  // Credential
  if (kinds.has('credential')) {
    credential = random.pick(['master', 'limited', 'token', 'invalid', 'none', 'malformed'] as const);
    notes.push(`credential ${credential}`);
  }
  const auth = authorization(credential, credentials, random);
  if (auth !== undefined) headers.authorization = auth;

  // Other headers
  if (kinds.has('header')) {
    const header = random.pick([
      ['origin', random.pick(['https://evil.example', 'null', '\u00e9'])],
      ['x-forwarded-for', random.pick(['1.2.3.4', 'not-an-ip', '::1, 10.0.0.1', ','])],
      ['content-encoding', random.pick(['gzip', 'br', 'identity', 'x'])],
      ['accept', random.pick(['text/event-stream', 'application/xml', '*/*'])],
      ['openai-organization', 'o'.repeat(2_000)],
      ['x-request-id', random.pick(['', 'r'.repeat(3_000), '<id>'])],
      ['openai-project', random.pick(['p', '', '../'])],
      ['idempotency-key', 'k'],
    ] as const);
    headers[header[0]] = header[1];
    notes.push(`header ${header[0]}`);
  }

  let chunked = false;
  if (body !== undefined && random.chance(0.1)) {
    chunked = true;
    notes.push('chunked body');
  }
  if (method === 'GET' || method === 'HEAD') body = undefined;
  if (body !== undefined && contentType !== undefined && contentType !== '') headers['content-type'] = contentType;
  return { route: spec.route, method, path: query ? `${path}?${query}` : path, headers, ...(body !== undefined ? { body, ...(chunked ? { chunked } : {}) } : {}), mutations: notes.length > 0 ? notes : ['none'] };
}
