/**
 * The storage contract, as vitest tests: every back end runs the same suite
 * (src/storage/sqlite/sqlite-store.test.ts, src/storage/postgres/postgres-store.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../../src/storage/audit-chain.js';
import { verifyChain } from '../../../src/audit/verify-chain.js';
import { migrations } from '../../../src/storage/migrations.js';
import { mutateResource, ResourceConflictError } from '../../../src/storage/resource-records.js';
import { FileConflictError, KeyConflictError, type ApiKeyRecord, type AuditRecord, type FileRecord, type Store } from '../../../src/storage/spec.js';
import type { ContractDatabase, ContractHarness } from './harness.js';
import { registerJobQueueContract } from './job-queue-contract.js';

export type { ContractDatabase, ContractHarness } from './harness.js';

const base = Date.UTC(2026, 0, 10, 12, 0, 0);
const DAY = 86_400_000;

export function auditRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    requestId: 'req_1',
    createdAt: base,
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4-turbo',
    provider: 'mock',
    status: 200,
    durationMs: 12.5,
    promptTokens: 10,
    completionTokens: 20,
    cachedTokens: 0,
    costMicros: 150,
    stream: false,
    cacheHit: null,
    errorCode: null,
    keyId: 'key_a',
    user: 'alice',
    clientIp: '127.0.0.1',
    requestBody: null,
    responseBody: null,
    ...overrides,
  };
}

export function keyRecord(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: 'key_aaaaaaaaaaaaaaaa',
    name: 'first',
    prefix: 'sk-cg-aaaaaaaa',
    secretHash: 'a'.repeat(64),
    previousPrefix: null,
    previousSecretHash: null,
    previousValidUntil: null,
    settings: {
      project: 'default',
      admin: false,
      models: ['gpt-4*'],
      endpoints: null,
      ips: ['10.0.0.0/8', '::1'],
      origins: null,
      limits: { rpm: 60 },
      budget: { usd: 12.5, period: 'month' },
      queueSeconds: 0,
      metadata: { team: 'ünïcode' },
    },
    createdAt: base,
    updatedAt: base,
    expiresAt: null,
    revokedAt: null,
    ...overrides,
  };
}

export function registerStoreContract(harness: ContractHarness): void {
  registerJobQueueContract(harness);
  async function migrated(): Promise<{ store: Store; database: ContractDatabase }> {
    const database = await harness.freshDatabase();
    const store = await database.open();
    await store.migrate();
    return { store, database };
  }

  describe(`${harness.dialect} store contract: schema`, () => {
    it('names its dialect and applies the migrations idempotently, also from two stores at once', async () => {
      const database = await harness.freshDatabase();
      const [first, second] = await Promise.all([database.open(), database.open()]);
      expect(first.dialect).toBe(harness.dialect);
      await Promise.all([first.migrate(), second.migrate()]);
      await first.migrate();
      await first.auditLog.append([auditRecord()]);
      await second.migrate();
      expect(await second.auditLog.count()).toBe(1);
      expect(migrations.length).toBeGreaterThanOrEqual(3);
    });

    it('keeps the metadata', async () => {
      const { store } = await migrated();
      expect(await store.metadata.get('instance_id')).toBeNull();
      await store.metadata.set('instance_id', 'first');
      await store.metadata.set('instance_id', 'second');
      await store.metadata.set('other', '');
      expect(await store.metadata.get('instance_id')).toBe('second');
      expect(await store.metadata.get('other')).toBe('');
    });

    it('closes idempotently', async () => {
      const { store } = await migrated();
      await store.close();
      await store.close();
      await expect(store.keys.lastChange()).rejects.toThrow();
    });
  });

  describe(`${harness.dialect} store contract: keys`, () => {
    it('creates, reads and updates keys, settings included', async () => {
      const { store } = await migrated();
      expect(await store.keys.lastChange()).toBe(0);
      const key = keyRecord();
      await store.keys.create(key);
      expect(await store.keys.get(key.id)).toEqual(key);
      expect(await store.keys.get('key_missing')).toBeNull();
      expect(await store.keys.lastChange()).toBe(base);

      const rotated: ApiKeyRecord = {
        ...key,
        prefix: 'sk-cg-bbbbbbbb',
        secretHash: 'b'.repeat(64),
        previousPrefix: key.prefix,
        previousSecretHash: key.secretHash,
        previousValidUntil: base + DAY,
        updatedAt: base + 10,
        settings: { ...key.settings, admin: true, models: null },
      };
      expect(await store.keys.update(rotated)).toEqual(rotated);
      expect(await store.keys.get(key.id)).toEqual(rotated);
      expect(await store.keys.lastChange()).toBe(base + 10);
      expect(await store.keys.update({ ...rotated, id: 'key_missing' })).toBeNull();
    });

    it('finds keys by current and previous prefix', async () => {
      const { store } = await migrated();
      const one = keyRecord({ id: 'key_1', prefix: 'sk-cg-11111111', previousPrefix: 'sk-cg-00000000', previousSecretHash: 'c'.repeat(64) });
      const two = keyRecord({ id: 'key_2', prefix: 'sk-cg-22222222', createdAt: base + 1 });
      await store.keys.create(one);
      await store.keys.create(two);
      expect(await store.keys.findByPrefix('sk-cg-11111111')).toEqual([one]);
      expect(await store.keys.findByPrefix('sk-cg-00000000')).toEqual([one]);
      expect(await store.keys.findByPrefix('sk-cg-22222222')).toEqual([two]);
      expect(await store.keys.findByPrefix('sk-cg-99999999')).toEqual([]);
    });

    it('refuses duplicate ids and prefixes with KeyConflictError', async () => {
      const { store } = await migrated();
      await store.keys.create(keyRecord({ id: 'key_1', prefix: 'sk-cg-11111111' }));
      await store.keys.create(keyRecord({ id: 'key_2', prefix: 'sk-cg-22222222' }));
      await expect(store.keys.create(keyRecord({ id: 'key_1', prefix: 'sk-cg-33333333' }))).rejects.toThrow(KeyConflictError);
      await expect(store.keys.create(keyRecord({ id: 'key_1', prefix: 'sk-cg-33333333' }))).rejects.toThrow(/id key_1/);
      await expect(store.keys.create(keyRecord({ id: 'key_3', prefix: 'sk-cg-11111111' }))).rejects.toThrow(/prefix sk-cg-11111111/);
      const second = (await store.keys.get('key_2'))!;
      await expect(store.keys.update({ ...second, prefix: 'sk-cg-11111111' })).rejects.toBeInstanceOf(KeyConflictError);
      expect(await store.keys.get('key_2')).toEqual(second);
    });

    it('lists in creation order, pages after an id, and hides revoked keys unless asked', async () => {
      const { store } = await migrated();
      const keys = [
        keyRecord({ id: 'key_c', prefix: 'sk-cg-cccccccc', createdAt: base }),
        keyRecord({ id: 'key_a', prefix: 'sk-cg-aaaaaaaa', createdAt: base + 5 }),
        keyRecord({ id: 'key_b', prefix: 'sk-cg-bbbbbbbb', createdAt: base + 5, revokedAt: base + 6, updatedAt: base + 6 }),
        keyRecord({ id: 'key_d', prefix: 'sk-cg-dddddddd', createdAt: base + 9 }),
      ];
      for (const key of [...keys].reverse()) await store.keys.create(key);
      const ids = (list: ApiKeyRecord[]): string[] => list.map((key) => key.id);
      expect(ids(await store.keys.list({ limit: 10 }))).toEqual(['key_c', 'key_a', 'key_d']);
      expect(ids(await store.keys.list({ limit: 10, includeRevoked: true }))).toEqual(['key_c', 'key_a', 'key_b', 'key_d']);
      expect(ids(await store.keys.list({ limit: 2, includeRevoked: true }))).toEqual(['key_c', 'key_a']);
      expect(ids(await store.keys.list({ limit: 2, includeRevoked: true, after: 'key_a' }))).toEqual(['key_b', 'key_d']);
      expect(ids(await store.keys.list({ limit: 2, after: 'key_a' }))).toEqual(['key_d']);
      expect(ids(await store.keys.list({ limit: 2, after: 'key_d' }))).toEqual([]);
      expect(await store.keys.list({ limit: 0 })).toEqual([]);
      expect(await store.keys.lastChange()).toBe(base + 6);
    });

    it('rejects bad input with clear errors', async () => {
      const { store } = await migrated();
      await expect(store.keys.list({ limit: -1 })).rejects.toThrow(/limit must be a non-negative integer/);
      await expect(store.keys.create({ ...keyRecord(), id: '' })).rejects.toThrow(/id must be a non-empty string/);
      await expect(store.keys.create({ ...keyRecord(), createdAt: Number.NaN })).rejects.toThrow(/createdAt/);
      await expect(store.keys.create({ ...keyRecord(), settings: null } as unknown as ApiKeyRecord)).rejects.toThrow(/settings must be an object/);
      await expect(store.keys.get(42 as unknown as string)).rejects.toThrow(TypeError);
    });
  });

  describe(`${harness.dialect} store contract: audit log`, () => {
    it('appends records as one chain and round-trips every field', async () => {
      const { store } = await migrated();
      const first = auditRecord({ requestBody: '{"messages":[]}', responseBody: 'ok', cacheHit: true, costMicros: 2 ** 40, durationMs: 0.1 + 0.2, piiCounts: 'email=2,card=1' });
      const second = auditRecord({ requestId: 'req_2', createdAt: base + 1, model: null, provider: null, promptTokens: null, costMicros: null, stream: true, cacheHit: false, user: null, clientIp: null });
      await store.auditLog.append([first, second]);
      await store.auditLog.append([]);
      await store.auditLog.append([auditRecord({ requestId: 'req_3', createdAt: base + 2 })]);

      const all = await store.auditLog.scan(0, 10);
      expect(all.map((record) => record.seq)).toEqual([1, 2, 3]);
      expect(all[0]).toMatchObject({ ...first, seq: 1, prevHash: GENESIS_HASH, erasedAt: null });
      expect(all[1]).toMatchObject({ ...second, seq: 2, prevHash: all[0]!.hash });
      expect(all[2]!.prevHash).toBe(all[1]!.hash);
      expect(all[1]!.piiCounts).toBeNull();
      expect(await store.auditLog.count()).toBe(3);
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 3, firstSeq: 1, lastSeq: 3, anchor: { seq: 1, genesis: true } });
    });

    it('stores a batch all or nothing and rejects bad records clearly', async () => {
      const { store } = await migrated();
      await expect(store.auditLog.append([auditRecord(), auditRecord({ durationMs: Number.NaN })])).rejects.toThrow(/#1: durationMs/);
      await expect(store.auditLog.append([auditRecord({ createdAt: -1 })])).rejects.toThrow(/createdAt/);
      await expect(store.auditLog.append([auditRecord({ stream: 'yes' as unknown as boolean })])).rejects.toThrow(/stream must be a boolean/);
      await expect(store.auditLog.append('nope' as unknown as AuditRecord[])).rejects.toThrow(TypeError);
      expect(await store.auditLog.count()).toBe(0);
      await store.auditLog.append([auditRecord()]);
      expect((await store.auditLog.scan(0, 10)).map((record) => record.seq)).toEqual([1]);
      await expect(store.auditLog.list({ limit: 1.5 })).rejects.toThrow(RangeError);
      await expect(store.auditLog.scan(-1, 10)).rejects.toThrow(RangeError);
      await expect(store.auditLog.usage({ groupBy: ['color' as 'key'] })).rejects.toThrow(/Unknown usage group/);
      await expect(store.auditLog.list({ limit: 5, status: '200' as unknown as number })).rejects.toThrow(/status/);
    });

    it('keeps one valid chain when two stores append concurrently', async () => {
      const database = await harness.freshDatabase();
      const [first, second] = await Promise.all([database.open(), database.open()]);
      await first.migrate();
      await second.migrate();
      const appends = Array.from({ length: 40 }, (_, index) =>
        (index % 2 === 0 ? first : second).auditLog.append(
          Array.from({ length: 3 }, (__, part) => auditRecord({ requestId: `req_${index}_${part}`, createdAt: base + index })),
        ),
      );
      await Promise.all(appends);
      expect(await first.auditLog.count()).toBe(120);
      const result = await verifyChain(second.auditLog, { batchSize: 7 });
      expect(result).toMatchObject({ ok: true, checked: 120, firstSeq: 1, lastSeq: 120 });
      const seqs = (await first.auditLog.scan(0, 200)).map((record) => record.seq);
      expect(seqs).toEqual(Array.from({ length: 120 }, (_, index) => index + 1));
    });

    it('lists newest first with filters and a seq cursor; scans oldest first', async () => {
      const { store } = await migrated();
      await store.auditLog.append([
        auditRecord({ requestId: 'r1', createdAt: base, keyId: 'key_a', model: 'm1', user: 'alice', status: 200 }),
        auditRecord({ requestId: 'r2', createdAt: base + 1, keyId: 'key_b', model: 'm2', user: 'bob', status: 429, path: '/v1/embeddings' }),
        auditRecord({ requestId: 'r3', createdAt: base + 2, keyId: 'key_a', model: 'm2', user: null, status: 200 }),
        auditRecord({ requestId: 'r4', createdAt: base + 3, keyId: 'key_a', model: 'm1', user: 'alice', status: 500 }),
        auditRecord({ requestId: 'r5', createdAt: base + 4, keyId: 'master', model: 'm1', user: 'bob', status: 200 }),
      ]);
      const ids = (list: AuditRecord[]): string[] => list.map((record) => record.requestId);
      expect(ids(await store.auditLog.list({ limit: 10 }))).toEqual(['r5', 'r4', 'r3', 'r2', 'r1']);
      expect(ids(await store.auditLog.list({ limit: 2 }))).toEqual(['r5', 'r4']);
      expect(ids(await store.auditLog.list({ limit: 2, before: 4 }))).toEqual(['r3', 'r2']);
      expect(ids(await store.auditLog.list({ limit: 2, keyId: 'key_a' }))).toEqual(['r4', 'r3']);
      expect(ids(await store.auditLog.list({ limit: 2, keyId: 'key_a', before: 3 }))).toEqual(['r1']);
      expect(ids(await store.auditLog.list({ limit: 10, model: 'm1', user: 'alice' }))).toEqual(['r4', 'r1']);
      expect(ids(await store.auditLog.list({ limit: 10, status: 200 }))).toEqual(['r5', 'r3', 'r1']);
      expect(ids(await store.auditLog.list({ limit: 10, path: '/v1/embeddings' }))).toEqual(['r2']);
      expect(ids(await store.auditLog.list({ limit: 10, requestId: 'r3' }))).toEqual(['r3']);
      expect(ids(await store.auditLog.list({ limit: 10, requestId: 'r3', from: base + 3 }))).toEqual([]);
      expect(ids(await store.auditLog.list({ limit: 10, from: base + 1, to: base + 3 }))).toEqual(['r3', 'r2']);
      expect(await store.auditLog.list({ limit: 0 })).toEqual([]);
      expect(ids(await store.auditLog.scan(0, 2))).toEqual(['r1', 'r2']);
      expect(ids(await store.auditLog.scan(2, 10, { user: 'bob' }))).toEqual(['r5']);
    });

    it('sums usage grouped by key, model, user and UTC day, and the spend of a key', async () => {
      const { store } = await migrated();
      const nextDay = Date.UTC(2026, 0, 11, 0, 0, 0);
      await store.auditLog.append([
        auditRecord({ createdAt: nextDay - 1, keyId: 'key_a', model: 'm1', user: 'alice', promptTokens: 1, completionTokens: 2, cachedTokens: 1, costMicros: 10 }),
        auditRecord({ createdAt: nextDay, keyId: 'key_a', model: 'm2', user: null, promptTokens: 3, completionTokens: null, cachedTokens: null, costMicros: null }),
        auditRecord({ createdAt: nextDay + 5, keyId: 'key_b', model: 'm1', user: 'alice', promptTokens: 5, completionTokens: 6, cachedTokens: 0, costMicros: 2 ** 40 }),
      ]);
      expect(await store.auditLog.usage({ groupBy: [] })).toEqual([
        { requests: 3, promptTokens: 9, completionTokens: 8, cachedTokens: 1, costMicros: 2 ** 40 + 10 },
      ]);
      expect(await store.auditLog.usage({ groupBy: ['key'] })).toEqual([
        { key: 'key_a', requests: 2, promptTokens: 4, completionTokens: 2, cachedTokens: 1, costMicros: 10 },
        { key: 'key_b', requests: 1, promptTokens: 5, completionTokens: 6, cachedTokens: 0, costMicros: 2 ** 40 },
      ]);
      expect(await store.auditLog.usage({ groupBy: ['day', 'model'] })).toEqual([
        { day: '2026-01-10', model: 'm1', requests: 1, promptTokens: 1, completionTokens: 2, cachedTokens: 1, costMicros: 10 },
        { day: '2026-01-11', model: 'm1', requests: 1, promptTokens: 5, completionTokens: 6, cachedTokens: 0, costMicros: 2 ** 40 },
        { day: '2026-01-11', model: 'm2', requests: 1, promptTokens: 3, completionTokens: 0, cachedTokens: 0, costMicros: 0 },
      ]);
      expect(await store.auditLog.usage({ groupBy: ['user'], from: nextDay })).toEqual([
        { user: null, requests: 1, promptTokens: 3, completionTokens: 0, cachedTokens: 0, costMicros: 0 },
        { user: 'alice', requests: 1, promptTokens: 5, completionTokens: 6, cachedTokens: 0, costMicros: 2 ** 40 },
      ]);
      expect(await store.auditLog.usage({ groupBy: ['model'], to: nextDay, filter: { keyId: 'key_a' } })).toEqual([
        { model: 'm1', requests: 1, promptTokens: 1, completionTokens: 2, cachedTokens: 1, costMicros: 10 },
      ]);
      expect(await store.auditLog.usage({ groupBy: ['key'], filter: { keyId: 'nobody' } })).toEqual([]);

      expect(await store.auditLog.spendOf('key_a', 0, nextDay + DAY)).toBe(10);
      expect(await store.auditLog.spendOf('key_b', nextDay, nextDay + 6)).toBe(2 ** 40);
      expect(await store.auditLog.spendOf('key_b', nextDay, nextDay + 5)).toBe(0);
      expect(await store.auditLog.spendOf('nobody', 0, nextDay + DAY)).toBe(0);
      await expect(store.auditLog.spendOf('key_a', -5, 0)).rejects.toThrow(/from/);
    });

    it('deletes old records as a prefix of the chain, which still verifies and grows', async () => {
      const { store } = await migrated();
      await store.auditLog.append([
        auditRecord({ requestId: 'r1', createdAt: base }),
        auditRecord({ requestId: 'r2', createdAt: base + 10 }),
        // Recorded after r2 but arrived before it (a long request): retention must not cut r2 out alone.
        auditRecord({ requestId: 'r3', createdAt: base + 5 }),
        auditRecord({ requestId: 'r4', createdAt: base + 20 }),
      ]);
      expect(await store.auditLog.deleteOlderThan(base + 8)).toBe(1);
      expect(await store.auditLog.deleteOlderThan(base + 8)).toBe(0);
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 3, firstSeq: 2, anchor: { seq: 2, genesis: false } });
      expect(await store.auditLog.deleteOlderThan(base + 1000)).toBe(3);
      expect(await store.auditLog.count()).toBe(0);
      await store.auditLog.append([auditRecord({ requestId: 'r5', createdAt: base + 2000 })]);
      const [only] = await store.auditLog.scan(0, 10);
      expect(only?.seq).toBe(5);
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 1, firstSeq: 5 });
    });

    it('erases a user without breaking the chain', async () => {
      const { store } = await migrated();
      await store.auditLog.append([
        auditRecord({ requestId: 'r1', user: 'alice', requestBody: 'secret question', responseBody: 'secret answer' }),
        auditRecord({ requestId: 'r2', user: 'bob' }),
        auditRecord({ requestId: 'r3', user: 'alice', clientIp: '10.0.0.9' }),
      ]);
      const before = await store.auditLog.scan(0, 10);
      expect(await store.auditLog.eraseUser('alice', base + 99)).toBe(2);
      expect(await store.auditLog.eraseUser('alice', base + 100)).toBe(0);
      const after = await store.auditLog.scan(0, 10);
      expect(after[0]).toMatchObject({ user: null, clientIp: null, requestBody: null, responseBody: null, erasedAt: base + 99 });
      expect(after[0]!.personalDigest).toBe(before[0]!.personalDigest);
      expect(after[0]!.hash).toBe(before[0]!.hash);
      expect(after[1]).toEqual(before[1]);
      expect(await store.auditLog.list({ limit: 10, user: 'alice' })).toEqual([]);
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 3, erased: 2 });
      await expect(store.auditLog.eraseUser('', base)).rejects.toThrow(/user must be a non-empty string/);
    });

    it('lets the verifier find a record changed in the database', async () => {
      const { store, database } = await migrated();
      await store.auditLog.append([auditRecord({ requestId: 'r1' }), auditRecord({ requestId: 'r2' }), auditRecord({ requestId: 'r3' })]);
      await database.exec('UPDATE audit_log SET completion_tokens = 1 WHERE seq = 2');
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: false, checked: 2, problem: { seq: 2 } });
      await database.exec('UPDATE audit_log SET completion_tokens = 20 WHERE seq = 2');
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 3 });
      await database.exec("UPDATE audit_log SET end_user = 'mallory' WHERE seq = 3");
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/personal fields/) } });
      await database.exec("UPDATE audit_log SET end_user = 'alice' WHERE seq = 3");
      await database.exec('DELETE FROM audit_log WHERE seq = 2');
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/record 2 is missing/) } });
    });

    it('lets the verifier find records removed from the end of the chain (through the chain head)', async () => {
      const { store, database } = await migrated();
      await store.auditLog.append([auditRecord({ requestId: 'r1' }), auditRecord({ requestId: 'r2' }), auditRecord({ requestId: 'r3' })]);
      expect(await store.auditLog.head()).toMatchObject({ seq: 3 });
      await database.exec('DELETE FROM audit_log WHERE seq = 3');
      expect(await verifyChain(store.auditLog)).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/removed/) } });
    });
  });

  describe(`${harness.dialect} store contract: files`, () => {
    const file = (overrides: Partial<FileRecord> = {}): FileRecord => ({
      id: 'file-aaaaaaaaaaaaaaaaaaaaaaaa',
      project: 'default',
      purpose: 'batch',
      filename: 'requests ünï.jsonl',
      bytes: 1234,
      createdAt: base,
      ...overrides,
    });

    it('creates, reads back and deletes a file, per project', async () => {
      const { store } = await migrated();
      await store.files.create(file());
      expect(await store.files.get('default', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toEqual(file());
      expect(await store.files.get('other', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toBeNull();
      expect(await store.files.get('default', 'file-missing')).toBeNull();
      await expect(store.files.create(file({ project: 'other' }))).rejects.toBeInstanceOf(FileConflictError);
      expect(await store.files.delete('other', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toBe(false);
      expect(await store.files.delete('default', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toBe(true);
      expect(await store.files.delete('default', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toBe(false);
      expect(await store.files.get('default', 'file-aaaaaaaaaaaaaaaaaaaaaaaa')).toBeNull();
    });

    it('keeps large sizes exactly', async () => {
      const { store } = await migrated();
      await store.files.create(file({ bytes: 5 * 1024 ** 4 }));
      expect((await store.files.get('default', file().id))?.bytes).toBe(5 * 1024 ** 4);
    });

    it('lists by (createdAt, id) in both orders, pages with after, filters by purpose and project', async () => {
      const { store } = await migrated();
      const records = [
        file({ id: 'file-b', createdAt: base }),
        file({ id: 'file-a', createdAt: base }),
        file({ id: 'file-Z', createdAt: base + 1, purpose: 'vision' }),
        file({ id: 'file-c', createdAt: base + 2 }),
        file({ id: 'file-x', createdAt: base + 1, project: 'other' }),
      ];
      for (const record of records) await store.files.create(record);
      const ids = async (options: Parameters<Store['files']['list']>[0]) => (await store.files.list(options)).map((record) => record.id);
      expect(await ids({ project: 'default', limit: 10 })).toEqual(['file-c', 'file-Z', 'file-b', 'file-a']);
      expect(await ids({ project: 'default', limit: 10, order: 'asc' })).toEqual(['file-a', 'file-b', 'file-Z', 'file-c']);
      expect(await ids({ project: 'default', limit: 2 })).toEqual(['file-c', 'file-Z']);
      expect(await ids({ project: 'default', limit: 2, after: 'file-Z' })).toEqual(['file-b', 'file-a']);
      expect(await ids({ project: 'default', limit: 2, after: 'file-a', order: 'asc' })).toEqual(['file-b', 'file-Z']);
      expect(await ids({ project: 'default', limit: 10, after: 'file-a' })).toEqual([]);
      expect(await ids({ project: 'default', limit: 10, after: 'file-unknown' })).toEqual([]);
      expect(await ids({ project: 'default', limit: 10, after: 'file-x' })).toEqual([]);
      expect(await ids({ project: 'default', limit: 10, purpose: 'batch', order: 'asc' })).toEqual(['file-a', 'file-b', 'file-c']);
      expect(await ids({ project: 'default', limit: 10, purpose: 'vision' })).toEqual(['file-Z']);
      expect(await ids({ project: 'other', limit: 10 })).toEqual(['file-x']);
      expect(await ids({ project: 'default', limit: 0 })).toEqual([]);
    });
  });

  describe(`${harness.dialect} store contract: resources`, () => {
    const resource = (id: string, createdAt: number, project = 'default') => ({
      kind: 'batch', id, project, status: 'validating', data: { id, note: 'ünï' }, createdAt, updatedAt: createdAt,
    });

    it('creates, reads per project, lists newest first with paging, and deletes', async () => {
      const { store } = await migrated();
      expect((await store.resources.create(resource('batch_a', base))).version).toBe(1);
      await store.resources.create(resource('batch_b', base + 1));
      await store.resources.create(resource('batch_c', base + 1));
      await store.resources.create(resource('batch_x', base + 2, 'other'));
      await store.resources.create({ ...resource('batch_a', base), kind: 'fine_tuning.job' });
      await expect(store.resources.create(resource('batch_a', base, 'other'))).rejects.toBeInstanceOf(ResourceConflictError);
      expect((await store.resources.get('batch', 'batch_a'))?.data).toEqual({ id: 'batch_a', note: 'ünï' });
      expect(await store.resources.get('batch', 'batch_a', 'other')).toBeNull();
      expect(await store.resources.get('batch', 'batch_x', 'other')).not.toBeNull();
      const ids = async (after?: string, limit = 10) =>
        (await store.resources.list({ kind: 'batch', project: 'default', limit, ...(after ? { after } : {}) })).map((record) => record.id);
      expect(await ids()).toEqual(['batch_c', 'batch_b', 'batch_a']);
      expect(await ids(undefined, 2)).toEqual(['batch_c', 'batch_b']);
      expect(await ids('batch_b')).toEqual(['batch_a']);
      expect(await ids('batch_unknown')).toEqual([]);
      expect((await store.resources.listByStatus('batch', ['validating'], 10)).map((record) => record.id)).toEqual(['batch_a', 'batch_b', 'batch_c', 'batch_x']);
      expect(await store.resources.delete('batch', 'batch_a')).toBe(true);
      expect(await store.resources.delete('batch', 'batch_a')).toBe(false);
      expect(await store.resources.get('fine_tuning.job', 'batch_a')).not.toBeNull();
    });

    it('updates by compare-and-set on the version; concurrent mutations all land', async () => {
      const { store } = await migrated();
      await store.resources.create({ ...resource('batch_a', base), data: { count: 0 } });
      const updated = await store.resources.update('batch', 'batch_a', 1, { status: 'in_progress', data: { count: 1 } });
      expect(updated).toMatchObject({ status: 'in_progress', version: 2, data: { count: 1 } });
      expect(await store.resources.update('batch', 'batch_a', 1, { status: 'failed', data: {} })).toBeNull();
      await Promise.all(
        Array.from({ length: 20 }, () =>
          mutateResource(store.resources, 'batch', 'batch_a', (record) => ({ status: record.status, data: { count: (record.data.count as number) + 1 } })),
        ),
      );
      expect((await store.resources.get('batch', 'batch_a'))?.data).toEqual({ count: 21 });
      expect(await mutateResource(store.resources, 'batch', 'batch_missing', () => null)).toBeNull();
    });

    it('keeps events per stream, once per id, newest first with paging', async () => {
      const { store } = await migrated();
      await store.resources.create(resource('ftjob-a', base));
      for (let index = 1; index <= 5; index++) {
        expect(await store.resources.addEvent('batch', 'ftjob-a', 'events', { id: `ev${index}`, data: { n: index }, createdAt: base + index })).toBe(true);
      }
      expect(await store.resources.addEvent('batch', 'ftjob-a', 'events', { id: 'ev3', data: { n: 99 }, createdAt: base })).toBe(false);
      await store.resources.addEvent('batch', 'ftjob-a', 'checkpoints', { id: 'ev1', data: { step: 10 }, createdAt: base });
      const list = async (options: { limit: number; after?: string; order?: 'asc' | 'desc' }) =>
        (await store.resources.listEvents('batch', 'ftjob-a', 'events', options)).map((event) => event.data.n);
      expect(await list({ limit: 10 })).toEqual([5, 4, 3, 2, 1]);
      expect(await list({ limit: 2, after: 'ev4' })).toEqual([3, 2]);
      expect(await list({ limit: 10, order: 'asc', after: 'ev3' })).toEqual([4, 5]);
      expect((await store.resources.listEvents('batch', 'ftjob-a', 'checkpoints', { limit: 10 }))[0]).toEqual({ id: 'ev1', data: { step: 10 }, createdAt: base });
      await store.resources.delete('batch', 'ftjob-a');
      expect(await list({ limit: 10 })).toEqual([]);
    });
  });
}
