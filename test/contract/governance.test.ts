/**
 * Rate limits, budgets, usage, cost and the audit log through a real `chatgate serve` on
 * SQLite with in-memory counters: the official SDK for /v1, fetch for /admin, and the
 * `chatgate audit verify` command on the same data directory.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest, type AdminAnswer } from '../support/admin-api.js';
import { CHATGATE_BIN, startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const run = promisify(execFile);
const MASTER = 'sk-governance-test';
const CONFIG = `audit:
  bodies: true
prices:
  priced-model: { input: 1000, output: 2000 }
models:
  - name: gpt-4-turbo
    provider: mock
  - name: priced-model
    provider: mock
`;

let chatgate: RunningChatgate;
let base: string;

function admin(method: string, path: string, body?: unknown): Promise<AdminAnswer> {
  return adminRequest(base, MASTER, method, path, body);
}

async function createKey(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const { status, json } = await admin('POST', '/keys', body);
  expect(status, JSON.stringify(json)).toBe(201);
  return json as { id: string; secret: string };
}

function client(key: string): OpenAI {
  return new OpenAI({ baseURL: chatgate.url, apiKey: key, maxRetries: 0 });
}

async function settled<T>(promise: Promise<T>): Promise<T | InstanceType<typeof OpenAI.APIError>> {
  return promise.catch((error: unknown) => {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  });
}

/** The audit writer flushes every ~100 ms: poll until the records are there. */
async function logsOf(keyId: string, expected: number): Promise<any[]> {
  let data: any[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    data = (await admin('GET', `/logs?key_id=${keyId}&limit=1000`)).json.data as any[];
    if (data.length >= expected) return data;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return data;
}

beforeAll(async () => {
  chatgate = await startChatgate({ config: CONFIG, masterKey: MASTER });
  base = chatgate.url.replace(/\/v1$/, '');
});
afterAll(async () => {
  await chatgate?.stop();
});

describe('rate limits', () => {
  it('send x-ratelimit headers and refuse past the requests per minute with 429 rate_limit_exceeded and retry-after', async () => {
    const key = await createKey({ name: 'rpm', rpm: 3 });
    const openai = client(key.secret);
    const first = await openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }).withResponse();
    expect(first.response.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(first.response.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(first.response.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m\d+(\.\d+)?s$/);
    await openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    await openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    const refused = await settled(openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }));
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'requests' });
    const retryAfter = Number((refused as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('hold tokens per minute exactly under concurrency: reserved worst cases never exceed the limit', async () => {
    const key = await createKey({ name: 'tpm', tpm: 1000 });
    const openai = client(key.secret);
    // Each request reserves its prompt (~8 tokens) + 200: at most 4 fit in 1000 at once.
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, () => settled(openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }], max_tokens: 200 }))),
    );
    const admitted = outcomes.filter((outcome) => !(outcome instanceof OpenAI.APIError));
    const refused = outcomes.filter((outcome) => outcome instanceof OpenAI.RateLimitError);
    expect(admitted.length).toBeGreaterThanOrEqual(4);
    expect(admitted.length + refused.length).toBe(12);
    expect(refused.every((error) => (error as InstanceType<typeof OpenAI.RateLimitError>).type === 'tokens')).toBe(true);
    // A request larger than the whole limit is refused at once, saying so.
    const tooLarge = await settled(openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'x' }], max_tokens: 5000 }));
    expect(tooLarge).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect((tooLarge as Error).message).toMatch(/too large/i);
  });
});

describe('budgets, usage and cost', () => {
  it('charge each request at the configured price and refuse with insufficient_quota once the budget is spent', async () => {
    // priced-model: $1000 / 1M input, $2000 / 1M output: a request of ~8 prompt + 5 completion tokens costs ~$0.018.
    const key = await createKey({ name: 'budget', budget_usd: 0.05, budget_period: 'month' });
    const openai = client(key.secret);
    const outcomes: Array<unknown> = [];
    for (let index = 0; index < 6; index++) {
      outcomes.push(await settled(openai.chat.completions.create({ model: 'priced-model', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5, user: 'budget-user' })));
    }
    const refusedAt = outcomes.findIndex((outcome) => outcome instanceof OpenAI.APIError);
    expect(refusedAt).toBeGreaterThan(0);
    expect(outcomes[refusedAt]).toMatchObject({ status: 429, code: 'insufficient_quota' });
    const admitted = outcomes.slice(0, refusedAt) as OpenAI.ChatCompletion[];
    const expectedMicros = admitted.reduce((sum, completion) => sum + completion.usage!.prompt_tokens * 1000 + completion.usage!.completion_tokens * 2000, 0);
    expect(expectedMicros).toBeLessThanOrEqual(50_000);

    expect(outcomes.slice(refusedAt).every((outcome) => outcome instanceof OpenAI.RateLimitError)).toBe(true);
    const logs = await logsOf(key.id, outcomes.length);
    const usage = await admin('GET', `/usage?group_by=key,model&key_id=${key.id}`);
    expect(usage.status).toBe(200);
    const row = (usage.json.data as any[]).find((entry) => entry.model === 'priced-model');
    expect(row).toMatchObject({ key_id: key.id, prompt_tokens: admitted.reduce((sum, completion) => sum + completion.usage!.prompt_tokens, 0) });
    expect(row.cost_usd).toBeCloseTo(expectedMicros / 1e6, 6);
    expect(logs.filter((record) => record.status === 429)).toHaveLength(outcomes.length - refusedAt);
    expect(logs.filter((record) => record.status === 200).every((record) => record.cost_usd > 0)).toBe(true);
  });

  it('group usage by user and day', async () => {
    const usage = await admin('GET', '/usage?group_by=user,day');
    const today = new Date().toISOString().slice(0, 10);
    expect((usage.json.data as any[]).some((row) => row.user === 'budget-user' && row.day === today && row.requests >= 1)).toBe(true);
    expect((await admin('GET', '/usage?group_by=color')).status).toBe(400);
  });
});

describe('audit log', () => {
  it('records who sent what, with bodies when enabled, pages with a cursor and exports JSON lines', async () => {
    const key = await createKey({ name: 'audited' });
    const openai = client(key.secret);
    for (let index = 0; index < 3; index++) {
      await openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: `question ${index}` }], max_tokens: 5, user: 'carol' });
    }
    const stream = await openai.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'streamed' }], max_tokens: 5, stream: true, user: 'carol' });
    for await (const chunk of stream) void chunk;
    const logs = await logsOf(key.id, 4);
    expect(logs).toHaveLength(4);
    const [newest] = logs;
    expect(newest).toMatchObject({ key_id: key.id, user: 'carol', path: '/v1/chat/completions', model: 'gpt-4-turbo', provider: 'mock', status: 200, stream: true });
    expect(newest.client_ip).toMatch(/127\.0\.0\.1/);
    expect(newest.request_body).toContain('streamed');
    expect(JSON.parse(newest.response_body).choices[0].text.length).toBeGreaterThan(0);
    expect(logs[1].response_body).toContain('chat.completion');

    const page = await admin('GET', `/logs?key_id=${key.id}&limit=2`);
    expect(page.json.has_more).toBe(true);
    const next = await admin('GET', `/logs?key_id=${key.id}&limit=2&before=${page.json.next_before}`);
    expect([...page.json.data, ...next.json.data].map((record: any) => record.seq)).toEqual(logs.map((record) => record.seq));

    const exported = await admin('GET', `/logs?key_id=${key.id}&format=jsonl`);
    const lines = exported.text.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((record) => record.seq)).toEqual(logs.map((record) => record.seq).reverse());
  });

  it('records refused requests too (a bad key)', async () => {
    const bad = await settled(client('sk-cg-AAAAAAAAnotarealkey000000000000000000000000').models.list());
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
    let found = false;
    for (let attempt = 0; attempt < 40 && !found; attempt++) {
      const logs = (await admin('GET', '/logs?status=401&limit=10')).json.data as any[];
      found = logs.some((record) => record.path === '/v1/models' && record.key_id === null);
      if (!found) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(found).toBe(true);
  });

  it('erases an end user (GDPR) and still verifies, and `chatgate audit verify` catches tampering', async () => {
    const erased = await admin('DELETE', '/users/carol');
    expect(erased.json).toMatchObject({ user: 'carol', erased_records: 4 });
    const after = (await admin('GET', '/logs?limit=1000')).json.data as any[];
    expect(after.some((record) => record.user === 'carol')).toBe(false);
    const erasedRecords = after.filter((record) => record.erased_at !== null);
    expect(erasedRecords).toHaveLength(4);
    expect(erasedRecords.every((record) => record.request_body === null && record.client_ip === null)).toBe(true);
    expect((await admin('GET', '/audit/verify')).json).toMatchObject({ ok: true, erased: 4 });

    const verify = () =>
      run(process.execPath, [CHATGATE_BIN, 'audit', 'verify', '--data-dir', chatgate.dataDirectory], { cwd: chatgate.dataDirectory }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
      );
    const intact = await verify();
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('Audit chain intact');

    const database = new Database(join(chatgate.dataDirectory, 'chatgate.db'));
    const target = database.prepare('SELECT seq FROM audit_log ORDER BY seq LIMIT 1 OFFSET 2').get() as { seq: number };
    database.prepare('UPDATE audit_log SET completion_tokens = completion_tokens + 1 WHERE seq = ?').run(target.seq);
    database.close();
    const broken = await verify();
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN at record ${target.seq}`);
  });
});
