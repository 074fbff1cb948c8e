import { describe, expect, it } from 'vitest';
import type { ApiKeyRecord, KeyListOptions, KeyStore } from '../storage/spec.js';
import { KeyCache } from './key-cache.js';
import { defaultSettings } from './key-settings.js';

/** An in-memory KeyStore counting its queries (as if another instance shared it). */
class CountingStore implements KeyStore {
  records = new Map<string, ApiKeyRecord>();
  calls = { findByPrefix: 0, get: 0, lastChange: 0 };
  async create(record: ApiKeyRecord) {
    this.records.set(record.id, record);
  }
  async get(id: string) {
    this.calls.get += 1;
    return this.records.get(id) ?? null;
  }
  async findByPrefix(prefix: string) {
    this.calls.findByPrefix += 1;
    return [...this.records.values()].filter((record) => record.prefix === prefix || record.previousPrefix === prefix);
  }
  async list(_options: KeyListOptions) {
    return [...this.records.values()];
  }
  async update(record: ApiKeyRecord) {
    if (!this.records.has(record.id)) return null;
    this.records.set(record.id, record);
    return record;
  }
  async lastChange() {
    this.calls.lastChange += 1;
    return Math.max(0, ...[...this.records.values()].map((record) => record.updatedAt));
  }
}

function record(id: string, prefix: string, updatedAt: number): ApiKeyRecord {
  return {
    id, name: id, prefix, secretHash: '0'.repeat(64), previousPrefix: null, previousSecretHash: null, previousValidUntil: null,
    settings: defaultSettings(), createdAt: updatedAt, updatedAt, expiresAt: null, revokedAt: null,
  };
}

describe('KeyCache', () => {
  it('serves a hot key without a lookup per request and sees another instance\'s change within the check interval', async () => {
    let now = 1_000;
    const store = new CountingStore();
    await store.create(record('key_a', 'sk-cg-AAAAAAAA', 10));
    const cache = new KeyCache(store, { now: () => now });
    for (let index = 0; index < 100; index += 1) expect(await cache.byPrefix('sk-cg-AAAAAAAA')).toHaveLength(1);
    expect(store.calls.findByPrefix).toBe(1);
    expect(store.calls.lastChange).toBe(1);

    // Another instance revokes the key.
    await store.update({ ...record('key_a', 'sk-cg-AAAAAAAA', 20), revokedAt: 20 });
    now += 100;
    expect((await cache.byPrefix('sk-cg-AAAAAAAA'))[0]!.revokedAt).toBeNull(); // still within 250 ms
    now += 200;
    expect((await cache.byPrefix('sk-cg-AAAAAAAA'))[0]!.revokedAt).toBe(20);
    expect(store.calls.lastChange).toBe(2);
    expect(store.calls.findByPrefix).toBe(2);
  });

  it('never checks less often than every 500 ms and expires entries after maxAgeMs', async () => {
    let now = 0;
    const store = new CountingStore();
    await store.create(record('key_a', 'sk-cg-AAAAAAAA', 10));
    const cache = new KeyCache(store, { now: () => now, checkIntervalMs: 10_000, maxAgeMs: 1_000 });
    await cache.byPrefix('sk-cg-AAAAAAAA');
    now = 499;
    await cache.byPrefix('sk-cg-AAAAAAAA');
    expect(store.calls.lastChange).toBe(1);
    now = 500;
    await cache.byPrefix('sk-cg-AAAAAAAA');
    expect(store.calls.lastChange).toBe(2);
    expect(store.calls.findByPrefix).toBe(1);
    now = 1_000;
    await cache.byPrefix('sk-cg-AAAAAAAA');
    expect(store.calls.findByPrefix).toBe(2);
  });

  it('remembers unknown prefixes briefly, until a key is created', async () => {
    let now = 0;
    const store = new CountingStore();
    const cache = new KeyCache(store, { now: () => now, negativeTtlMs: 2_000 });
    for (let index = 0; index < 50; index += 1) expect(await cache.byPrefix('sk-cg-BADBADBA')).toEqual([]);
    expect(store.calls.findByPrefix).toBe(1);
    now = 2_000;
    await cache.byPrefix('sk-cg-BADBADBA');
    expect(store.calls.findByPrefix).toBe(2);
    await store.create(record('key_b', 'sk-cg-BADBADBA', 2_100));
    now = 2_300;
    expect(await cache.byPrefix('sk-cg-BADBADBA')).toHaveLength(1);
  });

  it('shares one query between concurrent lookups and stays bounded', async () => {
    const store = new CountingStore();
    await store.create(record('key_a', 'sk-cg-AAAAAAAA', 10));
    const cache = new KeyCache(store, { maxEntries: 3, maxNegativeEntries: 3 });
    await Promise.all(Array.from({ length: 20 }, () => cache.byPrefix('sk-cg-AAAAAAAA')));
    expect(store.calls.findByPrefix).toBe(1);
    for (let index = 0; index < 10; index += 1) await cache.byPrefix(`sk-cg-X000000${index}`);
    expect(store.calls.findByPrefix).toBe(11);
    await cache.byPrefix('sk-cg-X0000000'); // evicted from the bounded negative map
    expect(store.calls.findByPrefix).toBe(12);
    expect(await cache.byId('key_a')).not.toBeNull();
    expect(await cache.byId('key_a')).not.toBeNull();
    expect(store.calls.get).toBe(1);
  });

  it('invalidate() drops everything at once (changes through this instance)', async () => {
    const store = new CountingStore();
    await store.create(record('key_a', 'sk-cg-AAAAAAAA', 10));
    const cache = new KeyCache(store);
    await cache.byPrefix('sk-cg-AAAAAAAA');
    cache.invalidate();
    await cache.byPrefix('sk-cg-AAAAAAAA');
    expect(store.calls.findByPrefix).toBe(2);
  });
});
