import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { openSqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { Store } from '../storage/spec.js';
import { KeyService } from './key-service.js';
import { keyToJson } from './key-settings.js';
import { hashSecret, keyPrefixOf } from './secrets.js';

let store: Store;
let now = Date.UTC(2026, 0, 1);
let service: KeyService;

beforeEach(async () => {
  store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'chatgate-keys-')), 'chatgate.db'));
  await store.migrate();
  now = Date.UTC(2026, 0, 1);
  service = new KeyService(store.keys, { now: () => now });
});
afterEach(() => store.close());

async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('KeyService', () => {
  it('creates a key, returning the secret once and storing only its digest', async () => {
    const { record, secret } = await service.create({ name: 'app', models: ['gpt-4*'], ips: ['10.0.0.0/8'], rpm: 60, budget_usd: 5, metadata: { team: 'a' }, expires_in_days: 1 });
    expect(record.prefix).toBe(keyPrefixOf(secret));
    expect(record.secretHash).toBe(hashSecret(secret));
    const stored = await store.keys.get(record.id);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(stored!.settings).toMatchObject({ models: ['gpt-4*'], ips: ['10.0.0.0/8'], limits: { rpm: 60 }, budget: { usd: 5, period: 'month' }, metadata: { team: 'a' }, admin: false, project: 'default' });
    expect(stored!.expiresAt).toBe(now + 86_400_000);
    const json = keyToJson(stored!, now);
    expect(json).not.toHaveProperty('secret_hash');
    expect(JSON.stringify(json)).not.toContain(record.secretHash);
  });

  it('refuses bad settings with a 400 naming the parameter', async () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'name'],
      [{ name: 'x', ips: ['10.0.0.0/33'] }, 'ips[0]'],
      [{ name: 'x', origins: ['https://a.com/path'] }, 'origins[0]'],
      [{ name: 'x', rpm: 0 }, 'rpm'],
      [{ name: 'x', tpm: 1.5 }, 'tpm'],
      [{ name: 'x', budget_usd: -1 }, 'budget_usd'],
      [{ name: 'x', expires_at: Math.floor(now / 1000) - 10 }, 'expires_at'],
      [{ name: 'x', expires_at: Math.floor(now / 1000) + 10, expires_in_days: 1 }, 'expires_at'],
      [{ name: 'x', endpoints: ['v1/chat'] }, 'endpoints[0]'],
      [{ name: 'x', models: ['gpt*4'] }, 'models[0]'],
      [{ name: 'x', unknown: 1 }, ''],
      [{ name: 'x', budget_period: 'day' }, 'budget_period'],
    ];
    for (const [body, param] of cases) {
      const error = await refusal(service.create(body));
      expect(error.status, JSON.stringify(body)).toBe(400);
      if (param) expect(error.param, JSON.stringify(body)).toBe(param);
    }
    // NUL characters and unpaired surrogates, which the stores cannot keep (a 500 before): also in names, keys and updates.
    for (const [body, param] of [
      [{ name: 'x', metadata: { team: 'a\u0000' } }, 'metadata.team'],
      [{ name: 'x\u0000y' }, 'name'],
      [{ name: 'x', models: ['gpt-4', '\u0000'] }, 'models[1]'],
      [{ name: 'x', metadata: { ['k\u0000']: 'v' } }, 'metadata.k\\u0000'],
      [{ name: 'x', metadata: { a: 'b\udfff\ud800' } }, 'metadata.a'],
    ] as const) {
      expect(await refusal(service.create(body)), JSON.stringify(body)).toMatchObject({ status: 400, param, code: 'invalid_value' });
    }
    const { record } = await service.create({ name: 'ok' });
    expect(await refusal(service.update(record.id, { metadata: { a: '\u0000' } }))).toMatchObject({ status: 400, param: 'metadata.a' });
    expect((await refusal(service.create(null))).status).toBe(400);
    expect((await refusal(service.create([1]))).status).toBe(400);
  });

  it('updates with PATCH semantics: absent fields stay, null clears', async () => {
    const { record } = await service.create({ name: 'app', models: ['a'], rpm: 5, tpm: 100, budget_usd: 1, budget_period: 'day' });
    now += 1000;
    const updated = await service.update(record.id, { name: 'renamed', rpm: null, models: null, budget_period: 'week' });
    expect(updated.name).toBe('renamed');
    expect(updated.settings.models).toBeNull();
    expect(updated.settings.limits).toEqual({ tpm: 100 });
    expect(updated.settings.budget).toEqual({ usd: 1, period: 'week' });
    expect(updated.updatedAt).toBe(now);
    expect(updated.secretHash).toBe(record.secretHash);
    expect((await refusal(service.update(record.id, { rpm: -1 }))).param).toBe('rpm');
    expect((await refusal(service.update('key_0000000000000000', {}))).status).toBe(404);
    expect((await refusal(service.update('nope', {}))).status).toBe(404);
  });

  it('revokes idempotently and refuses to change a revoked key', async () => {
    const { record } = await service.create({ name: 'app' });
    now += 5;
    const revoked = await service.revoke(record.id);
    expect(revoked.revokedAt).toBe(now);
    now += 5;
    expect((await service.revoke(record.id)).revokedAt).toBe(revoked.revokedAt);
    expect((await refusal(service.update(record.id, { name: 'x' }))).status).toBe(409);
    expect((await refusal(service.rotate(record.id))).status).toBe(409);
  });

  it('rotates: new secret, the old one kept for the grace period, replaced by a second rotation', async () => {
    const { record, secret } = await service.create({ name: 'app' });
    now += 1000;
    const first = await service.rotate(record.id, 60);
    expect(first.secret).not.toBe(secret);
    expect(first.record.prefix).toBe(keyPrefixOf(first.secret));
    expect(first.record.previousPrefix).toBe(record.prefix);
    expect(first.record.previousSecretHash).toBe(hashSecret(secret));
    expect(first.record.previousValidUntil).toBe(now + 60_000);
    const second = await service.rotate(record.id);
    expect(second.record.previousSecretHash).toBe(hashSecret(first.secret));
    expect(second.record.previousValidUntil).toBe(now + 86_400_000);
    const none = await service.rotate(record.id, 0);
    expect(none.record.previousPrefix).toBeNull();
    expect((await refusal(service.rotate(record.id, -1))).param).toBe('grace_seconds');
  });

  it('lists in pages, without revoked keys unless asked', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      now += 1;
      ids.push((await service.create({ name: `k${index}` })).record.id);
    }
    await service.revoke(ids[1]!);
    const first = await service.list({ limit: 2 });
    expect(first.records.map((record) => record.id)).toEqual([ids[0], ids[2]]);
    expect(first.hasMore).toBe(true);
    const rest = await service.list({ limit: 10, after: ids[2] });
    expect(rest.records.map((record) => record.id)).toEqual([ids[3], ids[4]]);
    expect(rest.hasMore).toBe(false);
    expect((await service.list({ includeRevoked: true })).records).toHaveLength(5);
    expect((await refusal(service.list({ limit: 0 }))).param).toBe('limit');
    expect((await refusal(service.list({ after: 'x' }))).param).toBe('after');
  });
});
