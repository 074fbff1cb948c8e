/**
 * Needs Redis at CHATGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379): these tests fail, never skip,
 * when it is down. Every limiter uses a random key prefix, deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { limiterConformance, T0 } from '../../test/support/limiter-conformance.js';
import type { ReserveResult } from './limiter.js';
import { RedisLimiter } from './redis-limiter.js';

const REDIS_URL = process.env.CHATGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `chatgate-test:${randomBytes(6).toString('hex')}:`;
const clients: Redis[] = [];

async function connect(): Promise<Redis> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  clients.push(client);
  await client.connect();
  return client;
}

async function keysUnder(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

// No beforeAll connection: with Redis down every test fails on its own (rather than being reported as skipped).
let admin: Redis;

beforeEach(async () => {
  admin ??= await connect();
});

afterAll(async () => {
  if (admin?.status === 'ready') {
    const keys = await keysUnder(admin, `${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
});

describe('RedisLimiter', () => {
  // Each limiter gets its own connection and namespace.
  let namespace = 0;
  limiterConformance({
    create: async (options) => new RedisLimiter({ redis: await connect(), keyPrefix: `${prefix}${++namespace}:`, ...options }),
  });

  it('shares exact counters between instances on separate connections', async () => {
    const keyPrefix = `${prefix}shared:`;
    const limiters = await Promise.all([1, 2, 3, 4].map(async () => new RedisLimiter({ redis: await connect(), keyPrefix })));
    const limits = { rpm: 50, tpm: 100_000, budgetMicros: 5_000_000, budgetPeriod: 'week' as const };
    const results: ReserveResult[] = await Promise.all(
      Array.from({ length: 200 }, (_, index) => limiters[index % 4]!.reserve('key_shared', limits, { requests: 1, tokens: 1000, micros: 10_000 }, T0)),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(50);
    const tokens = await Promise.all(
      Array.from({ length: 100 }, (_, index) => limiters[index % 4]!.reserve('key_tokens', { tpm: 5000 }, { requests: 1, tokens: 1 + (index % 97), micros: 0 }, T0)),
    );
    const probe = await limiters[0]!.reserve('key_tokens', { tpm: 5000 }, { requests: 1, tokens: 0, micros: 0 }, T0);
    const used = 5000 - probe.state.tokens!.remaining;
    expect(used).toBeLessThanOrEqual(5000);
    expect(used).toBe(tokens.reduce((sum, result, index) => sum + (result.ok ? 1 + (index % 97) : 0), 0));
    // settled by another instance than the one that reserved
    const admitted = results.find((result) => result.ok);
    if (!admitted?.ok) throw new Error('none admitted');
    await limiters[3]!.settle(admitted.reservation, { tokens: 0, micros: 0 });
    const after = await limiters[1]!.reserve('key_shared', { tpm: 100_000 }, { requests: 1, tokens: 0, micros: 0 }, T0);
    expect(after.state.tokens?.remaining).toBe(100_000 - 49_000);
  });

  it('keys carry the window start and expire after the window (+ margin); total budgets do not expire', async () => {
    const keyPrefix = `${prefix}ttl:`;
    const limiter = new RedisLimiter({ redis: await connect(), keyPrefix, expiryMarginMs: 5000 });
    const now = T0 + 10_000;
    await limiter.reserve('key_ttl', { rpm: 5, rpd: 5, tpm: 5, budgetMicros: 5, budgetPeriod: 'total' }, { requests: 1, tokens: 1, micros: 1 }, now);
    const minute = `${keyPrefix}{key_ttl}:rpm:${T0}`;
    expect(await admin.get(minute)).toBe('1');
    const minuteTtl = await admin.pttl(minute);
    expect(minuteTtl).toBeGreaterThan(50_000 + 5000 - 1000);
    expect(minuteTtl).toBeLessThanOrEqual(50_000 + 5000);
    expect(await admin.pttl(`${keyPrefix}{key_ttl}:tpm:${T0}`)).toBeGreaterThan(50_000);
    const dayTtl = await admin.pttl(`${keyPrefix}{key_ttl}:rpd:${Date.UTC(2030, 0, 7)}`);
    expect(dayTtl).toBeGreaterThan(12 * 3_600_000 - 10_000);
    expect(await admin.pttl(`${keyPrefix}{key_ttl}:budget:total:0`)).toBe(-1);
  });

  it('seeds a missing budget key from initialSpend once across instances (SET NX)', async () => {
    const keyPrefix = `${prefix}seed:`;
    let calls = 0;
    const initialSpend = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return 950;
    };
    const a = new RedisLimiter({ redis: await connect(), keyPrefix, initialSpend });
    const b = new RedisLimiter({ redis: await connect(), keyPrefix, initialSpend });
    const limits = { budgetMicros: 1000, budgetPeriod: 'month' as const };
    const results = await Promise.all(Array.from({ length: 10 }, (_, index) => (index % 2 ? a : b).reserve('key_seed', limits, { requests: 1, tokens: 0, micros: 10 }, T0)));
    expect(results.filter((result) => result.ok)).toHaveLength(5);
    expect(await admin.get(`${keyPrefix}{key_seed}:budget:month:${Date.UTC(2030, 0, 1)}`)).toBe('1000');
    expect(calls).toBeGreaterThanOrEqual(1);
    // once seeded, no more calls
    const before = calls;
    await a.reserve('key_seed', limits, { requests: 1, tokens: 0, micros: 0 }, T0);
    expect(calls).toBe(before);
  });

  it('closes a connection it created from a URL', async () => {
    const limiter = new RedisLimiter({ redis: REDIS_URL, keyPrefix: `${prefix}url:`, redisOptions: { maxRetriesPerRequest: 1 } });
    const result = await limiter.reserve('key_url', { rpm: 1 }, { requests: 1, tokens: 0, micros: 0 }, T0);
    expect(result.ok).toBe(true);
    await limiter.close();
  });
});
