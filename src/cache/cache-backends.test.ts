import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryCacheBackend, RedisCacheBackend, SqliteCacheBackend, type CacheBackend } from './cache-backends.js';

const redisUrl = process.env.CHATGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const directory = mkdtempSync(join(tmpdir(), 'chatgate-cache-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function conformance(name: string, create: (now: () => number) => Promise<CacheBackend>, realTime = false) {
  describe(`${name} cache back end`, () => {
    it('stores, replaces, deletes and expires entries', async () => {
      let time = 1_000_000;
      const backend = await create(realTime ? Date.now : () => time);
      try {
        const prefix = randomBytes(4).toString('hex');
        expect(await backend.get(`${prefix}a`)).toBeNull();
        await backend.set(`${prefix}a`, 'one', 60_000);
        await backend.set(`${prefix}b`, 'two', realTime ? 150 : 1000);
        expect(await backend.get(`${prefix}a`)).toBe('one');
        await backend.set(`${prefix}a`, 'uno', 60_000);
        expect(await backend.get(`${prefix}a`)).toBe('uno');
        expect(await backend.get(`${prefix}b`)).toBe('two');
        if (realTime) await new Promise((resolve) => setTimeout(resolve, 300));
        else time += 1001;
        expect(await backend.get(`${prefix}b`)).toBeNull();
        await backend.delete(`${prefix}a`);
        expect(await backend.get(`${prefix}a`)).toBeNull();
      } finally {
        await backend.close();
      }
    });
  });
}

conformance('memory', async (now) => new MemoryCacheBackend({ maxEntries: 100, now }));
conformance('sqlite', async (now) => new SqliteCacheBackend({ path: join(directory, `cache-${randomBytes(3).toString('hex')}.db`), now }));
conformance(
  'redis',
  async () => {
    const backend = new RedisCacheBackend({ url: redisUrl, prefix: `chatgate-test:${randomBytes(6).toString('hex')}:` });
    await backend.ready();
    return backend;
  },
  true,
);

describe('memory back end', () => {
  it('drops the least recently used entry beyond max_entries', async () => {
    const backend = new MemoryCacheBackend({ maxEntries: 3 });
    await backend.set('a', '1', 60_000);
    await backend.set('b', '2', 60_000);
    await backend.set('c', '3', 60_000);
    expect(await backend.get('a')).toBe('1'); // a is now the most recently used
    await backend.set('d', '4', 60_000);
    expect(backend.size).toBe(3);
    expect(await backend.get('b')).toBeNull();
    expect(await backend.get('a')).toBe('1');
    expect(await backend.get('c')).toBe('3');
    expect(await backend.get('d')).toBe('4');
  });
});

describe('sqlite back end', () => {
  it('keeps entries across reopening and purges expired rows', async () => {
    let time = 5_000;
    const path = join(directory, 'persist.db');
    const first = new SqliteCacheBackend({ path, now: () => time });
    await first.set('k', 'v', 10_000);
    await first.set('short', 'v', 10);
    await first.close();
    const second = new SqliteCacheBackend({ path, now: () => time });
    expect(await second.get('k')).toBe('v');
    time += 100;
    expect(second.purgeExpired()).toBe(1);
    await second.close();
  });
});

describe('redis back end', () => {
  it('fails (as the cache turns into a miss) when Redis cannot be reached', async () => {
    const backend = new RedisCacheBackend({ url: 'redis://127.0.0.1:1', redisOptions: { connectTimeout: 200, retryStrategy: () => null } });
    await expect(backend.get('x')).rejects.toThrow();
    await backend.close();
  });
});
