/**
 * Scale-out: two Chatgate processes share one PostgreSQL database and one Redis. A key's
 * per-minute limit holds exactly across both under concurrent load; a key revoked through
 * one is refused by the other within a second; both append to one audit chain that still
 * verifies.
 */
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const baseUrl = process.env.CHATGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.CHATGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const schema = `chatgate_scale_${randomBytes(5).toString('hex')}`;
const databaseUrl = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
const masterKey = `sk-scale-${randomBytes(8).toString('hex')}`;
let admin: pg.Client;
let first: RunningChatgate;
let second: RunningChatgate;

const config = [
  `database_url: ${JSON.stringify(databaseUrl)}`,
  `redis_url: ${JSON.stringify(redisUrl)}`,
  'models:',
  '  - name: gpt-4-turbo',
  '    provider: mock',
  '',
].join('\n');

async function adminRequest(instance: RunningChatgate, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${instance.url.replace(/\/v1$/, '')}${path}`, {
    method,
    headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  first = await startChatgate({ config, masterKey });
  // The second instance starts after the first migrated the schema, like a rolling deploy.
  second = await startChatgate({ config, masterKey });
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin?.end();
});

describe('two instances on one PostgreSQL and one Redis', () => {
  it('hold a per-minute request limit exactly across both under concurrent load', async () => {
    const created = await adminRequest(first, 'POST', '/admin/keys', { name: 'scale', rpm: 25 });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    const clients = [first, second].map((instance) => new OpenAI({ baseURL: instance.url, apiKey: secret, maxRetries: 0 }));
    // Stay inside one UTC minute so that the window does not roll over mid-test.
    const secondsLeft = 60 - new Date().getUTCSeconds();
    if (secondsLeft < 15) await new Promise((resolve) => setTimeout(resolve, secondsLeft * 1000 + 200));
    const outcomes = await Promise.all(
      Array.from({ length: 70 }, (_, index) =>
        clients[index % 2]!.chat.completions
          .create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: `hello ${index}` }], max_tokens: 5 })
          .then(() => 'ok' as const, (error: unknown) => (error instanceof OpenAI.RateLimitError ? ('limited' as const) : error)),
      ),
    );
    expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(25);
    expect(outcomes.filter((outcome) => outcome === 'limited')).toHaveLength(45);
  });

  it('refuse a key on one instance within a second of its revocation through the other', async () => {
    const created = await adminRequest(first, 'POST', '/admin/keys', { name: 'to-revoke' });
    const secret = created.json.secret as string;
    const onSecond = new OpenAI({ baseURL: second.url, apiKey: secret, maxRetries: 0 });
    await onSecond.models.list();
    const revoked = await adminRequest(first, 'POST', `/admin/keys/${created.json.id as string}/revoke`);
    expect(revoked.status).toBe(200);
    const started = performance.now();
    let refusedAfter: number | undefined;
    while (performance.now() - started < 3000) {
      const outcome = await onSecond.models.list().then(() => 'ok', (error: unknown) => error);
      if (outcome instanceof OpenAI.AuthenticationError) {
        refusedAfter = performance.now() - started;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refusedAfter).toBeDefined();
    expect(refusedAfter!).toBeLessThan(1000);
  });

  it('write one audit chain from both instances that verifies', async () => {
    const clients = [first, second].map((instance) => instance.client());
    await Promise.all(
      Array.from({ length: 40 }, (_, index) => clients[index % 2]!.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: `log ${index}` }], max_tokens: 3 })),
    );
    // The writers flush within ~100 ms.
    let verification: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 30; attempt++) {
      verification = (await adminRequest(second, 'GET', '/admin/audit/verify')).json;
      if ((verification.checked as number) >= 40 + 70) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(verification).toMatchObject({ ok: true });
    expect(verification.checked as number).toBeGreaterThanOrEqual(110);
    // Every record up to the end of the verified chain was checked (later ones, such as the
    // verify requests' own records, may land after the verification read the chain).
    const lastSeq = (verification.last_seq ?? verification.lastSeq) as number;
    const { rows } = await admin.query<{ count: string }>(`SELECT COUNT(*) AS count FROM ${schema}.audit_log WHERE seq <= $1`, [lastSeq]);
    expect(Number(rows[0]!.count)).toBe(verification.checked);
  });
});
