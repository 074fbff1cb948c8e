/**
 * API keys through the real `chatgate serve`: the admin API with fetch, the keys in use
 * with the official SDK, a second instance on the same database, and the `chatgate keys` CLI.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHATGATE_BIN, startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const run = promisify(execFile);
const MASTER = 'sk-contract-test-key';
const CONFIG = `server:
  trusted_proxies: ['127.0.0.1', '::1']
models:
  - name: gpt-4-turbo
    provider: mock
  - name: gpt-4-32k
    provider: mock
  - name: embed-small
    provider: mock
`;

let chatgate: RunningChatgate;
let second: RunningChatgate;
let base: string;

interface KeyJson {
  id: string;
  secret: string;
  prefix: string;
  status: string;
  [name: string]: unknown;
}

async function admin(method: string, path: string, body?: unknown, key = MASTER, server = () => base): Promise<{ status: number; json: any }> {
  const response = await fetch(`${server()}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}

async function createKey(body: Record<string, unknown>): Promise<KeyJson> {
  const { status, json } = await admin('POST', '/keys', body);
  expect(status, JSON.stringify(json)).toBe(201);
  return json as KeyJson;
}

function client(key: string, options: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}, server = chatgate): OpenAI {
  return new OpenAI({ baseURL: server.url, apiKey: key, maxRetries: 0, ...options });
}

const ask = (openai: OpenAI, model = 'gpt-4-turbo') => openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }] });

async function refusal(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  chatgate = await startChatgate({ config: CONFIG, masterKey: MASTER });
  base = chatgate.url.replace(/\/v1$/, '');
  second = await startChatgate({ config: CONFIG, masterKey: MASTER, dataDirectory: chatgate.dataDirectory });
});

afterAll(async () => {
  await Promise.all([chatgate?.stop(), second?.stop()]);
});

describe('API keys', () => {
  it('creates a key through the admin API, shows its secret once and serves it through the SDK', async () => {
    const key = await createKey({ name: 'app', models: ['gpt-4*'], metadata: { team: 'search' } });
    expect(key.secret).toMatch(/^sk-cg-[0-9A-Za-z]{48}$/);
    expect(key.prefix).toBe(key.secret.slice(0, 14));
    expect(key).toMatchObject({ object: 'api_key', status: 'active', models: ['gpt-4*'], metadata: { team: 'search' }, admin: false });
    const shown = await admin('GET', `/keys/${key.id}`);
    expect(shown.status).toBe(200);
    expect(JSON.stringify(shown.json)).not.toContain(key.secret);
    expect(shown.json).not.toHaveProperty('secret');

    const completion = await ask(client(key.secret));
    expect(completion.object).toBe('chat.completion');
    const models = await client(key.secret).models.list();
    expect(models.data.map((model) => model.id).sort()).toEqual(['gpt-4-32k', 'gpt-4-turbo']);

    const listed = await admin('GET', '/keys?limit=100');
    expect(listed.json.data.map((entry: KeyJson) => entry.id)).toContain(key.id);
  });

  it('refuses a model the key may not use with 403 and the reason', async () => {
    const key = await createKey({ name: 'narrow', models: ['gpt-4-turbo'] });
    const error = await refusal(ask(client(key.secret), 'gpt-4-32k'));
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(error.status).toBe(403);
    expect(error.code).toBe('model_not_allowed');
    expect(error.param).toBe('model');
    expect(error.message).toContain('gpt-4-32k');
    const embedding = await refusal(client(key.secret).embeddings.create({ model: 'embed-small', input: 'x' }));
    expect(embedding.code).toBe('model_not_allowed');
  });

  it('refuses bad admin input with OpenAI-style 400s', async () => {
    const cases: Array<[string, string, unknown, number, string | null]> = [
      ['POST', '/keys', { name: 'x', ips: ['10.0.0.0/99'] }, 400, 'ips[0]'],
      ['POST', '/keys', { name: 'x', rpm: -5 }, 400, 'rpm'],
      ['POST', '/keys', { name: 'x', expires_at: 1000 }, 400, 'expires_at'],
      ['POST', '/keys', { models: ['a'] }, 400, 'name'],
      ['POST', '/keys', [1, 2], 400, null],
      ['GET', '/keys/key_0000000000000000', undefined, 404, 'id'],
      ['PATCH', '/keys/key_0000000000000000', { name: 'y' }, 404, 'id'],
    ];
    for (const [method, path, body, status, param] of cases) {
      const response = await admin(method, path, body);
      expect(response.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect(response.json.error.param).toBe(param);
    }
    const broken = await fetch(`${base}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: '{"name":' });
    expect(broken.status).toBe(400);
  });

  it('refuses an expired key with 401 key_expired', async () => {
    const key = await createKey({ name: 'short', expires_at: Math.floor(Date.now() / 1000) + 2 });
    await ask(client(key.secret));
    await sleep(Math.max(0, (key.expires_at as number) * 1000 - Date.now()) + 100);
    const error = await refusal(ask(client(key.secret)));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe('key_expired');
  });

  it('refuses a key revoked through one instance on the other within one second', async () => {
    const key = await createKey({ name: 'revoke-me' });
    const other = client(key.secret, {}, second);
    await ask(other);
    await ask(other); // hot in the second instance's cache
    const revoked = await admin('POST', `/keys/${key.id}/revoke`);
    expect(revoked.json.status).toBe('revoked');
    const revokedAt = Date.now();
    let error: InstanceType<typeof OpenAI.APIError> | null = null;
    while (Date.now() - revokedAt < 1000) {
      error = await ask(other).then(() => null, (caught: unknown) => caught as InstanceType<typeof OpenAI.APIError>);
      if (error) break;
      await sleep(50);
    }
    expect(error, 'still accepted 1 s after the revocation').not.toBeNull();
    expect(error!.status).toBe(401);
    expect(error!.code).toBe('key_revoked');
    expect((await refusal(ask(client(key.secret)))).code).toBe('key_revoked');
  });

  it('rotates: both secrets work during the grace period, the old one fails after it', async () => {
    const key = await createKey({ name: 'rotate-me' });
    const rotated = await admin('POST', `/keys/${key.id}/rotate`, { grace_seconds: 2 });
    expect(rotated.status).toBe(200);
    expect(rotated.json.secret).not.toBe(key.secret);
    expect(rotated.json.previous_prefix).toBe(key.prefix);
    await ask(client(key.secret));
    await ask(client(rotated.json.secret));
    await sleep(2_300);
    const error = await refusal(ask(client(key.secret)));
    expect(error.status).toBe(401);
    expect(error.code).toBe('invalid_api_key');
    expect(error.message).toMatch(/rotation/);
    await ask(client(rotated.json.secret));
  });

  it('checks the IP allowlist against X-Forwarded-For from a trusted proxy', async () => {
    const key = await createKey({ name: 'office', ips: ['203.0.113.0/24', '2001:db8::/32'] });
    const from = (address?: string) => client(key.secret, address ? { defaultHeaders: { 'x-forwarded-for': `198.51.100.77, ${address}` } } : {});
    await ask(from('203.0.113.5'));
    await ask(from('2001:db8::42'));
    const outside = await refusal(ask(from('198.51.100.1')));
    expect(outside).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(outside.code).toBe('ip_not_allowed');
    expect((await refusal(ask(from()))).code).toBe('ip_not_allowed'); // the socket: 127.0.0.1
  });

  it('mints short-lived tokens with a subset of the key\'s rights', async () => {
    const key = await createKey({ name: 'browser', models: ['gpt-4*'] });
    const minted = await fetch(`${chatgate.url}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ expires_in_minutes: 5, models: ['gpt-4-turbo'] }),
    });
    expect(minted.status).toBe(201);
    const token = (await minted.json()) as { token: string; expires_at: number; models: string[] };
    expect(token.token).toMatch(/^cgt_/);
    expect(token.models).toEqual(['gpt-4-turbo']);
    expect(token.expires_at - Date.now() / 1000).toBeGreaterThan(290);

    await ask(client(token.token));
    await ask(client(token.token, {}, second)); // any instance sharing the database verifies it
    const other = await refusal(ask(client(token.token), 'gpt-4-32k'));
    expect(other).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(other.code).toBe('model_not_allowed');

    const wider = await fetch(`${chatgate.url}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${key.secret}` }, body: JSON.stringify({ models: ['embed-small'] }) });
    expect(wider.status).toBe(403);
    const nested = await fetch(`${chatgate.url}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${token.token}` }, body: '{}' });
    expect(nested.status).toBe(403);
    expect((await admin('GET', '/keys', undefined, token.token)).status).toBe(403);
    const badExpiry = await fetch(`${chatgate.url}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${key.secret}` }, body: JSON.stringify({ expires_in_minutes: 5000 }) });
    expect(badExpiry.status).toBe(400);

    const byAdmin = await admin('POST', `/keys/${key.id}/tokens`, { expires_in_minutes: 1 });
    expect(byAdmin.status).toBe(201);
    await ask(client(byAdmin.json.token));
    await admin('DELETE', `/keys/${key.id}`);
    await sleep(50);
    expect((await refusal(ask(client(token.token)))).code).toBe('key_revoked');
    expect((await refusal(ask(client('cgt_e30.AAAA')))).code).toBe('invalid_api_key');
  });

  it('keeps /admin for the master key and admin keys', async () => {
    const plain = await createKey({ name: 'plain' });
    const response = await admin('GET', '/keys', undefined, plain.secret);
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('admin_required');
    expect((await admin('GET', '/keys', undefined, 'sk-cg-wrong')).status).toBe(401);
    const adminKey = await createKey({ name: 'ops', admin: true });
    expect((await admin('GET', '/keys', undefined, adminKey.secret)).status).toBe(200);
  });

  it('creates a key with the CLI that works against the running server', async () => {
    const { stdout } = await run(process.execPath, [CHATGATE_BIN, 'keys', 'create', '--data-dir', chatgate.dataDirectory, '--name', 'from-cli', '--models', 'gpt-4-turbo', '--json'], {
      env: { ...process.env, CHATGATE_MASTER_KEY: MASTER },
      timeout: 20_000,
    });
    const key = JSON.parse(stdout) as KeyJson;
    expect(key.secret).toMatch(/^sk-cg-/);
    await sleep(600);
    expect((await ask(client(key.secret))).object).toBe('chat.completion');

    const listed = await run(process.execPath, [CHATGATE_BIN, 'keys', 'list', '--data-dir', chatgate.dataDirectory], { timeout: 20_000 });
    expect(listed.stdout).toContain(key.id);
    expect(listed.stdout).not.toContain(key.secret);
    await run(process.execPath, [CHATGATE_BIN, 'keys', 'revoke', key.id, '--data-dir', chatgate.dataDirectory], { timeout: 20_000 });
    await sleep(600);
    expect((await refusal(ask(client(key.secret)))).code).toBe('key_revoked');

    const bad = await run(process.execPath, [CHATGATE_BIN, 'keys', 'create', '--data-dir', chatgate.dataDirectory, '--name', 'x', '--ips', 'nonsense'], { timeout: 20_000 }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toContain('ips[0]');
  });
});
