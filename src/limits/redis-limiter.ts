/**
 * The shared limiter (`redis_url` set): every instance sees the same counters. The check
 * of all of a subject's counters and their increment run as one Lua script, so they are
 * atomic across connections and instances.
 *
 * Keys: `<prefix>{<subject>}:rpm:<minute start>`, `…:rpd:<day start>`, `…:tpm:<minute start>`,
 * `…:budget:<period>:<period start>` (ms since the epoch). The `{subject}` hash tag keeps a
 * subject's keys in one Redis Cluster slot. A key expires `expiryMarginMs` after its window
 * ends (relative to the caller's `now`, so injected clocks work); `total` budgets never expire.
 * Windows are computed from the calling instance's clock; keep instances NTP-synchronised.
 *
 * Budget seeding: when a budget key is missing and `initialSpend` is given, the script
 * reserves nothing and says so; the limiter then asks `initialSpend` and writes the value
 * with SET NX (the first instance wins), and runs the script again.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { createRedisConnection, type RedisConnection, type RedisStateLogger } from '../util/redis-client.js';
import {
  newReservation,
  refusalFor,
  stateOf,
  usageAfter,
  validateInput,
  windowsAt,
  type ActualUsage,
  type InitialSpend,
  type Limiter,
  type LimitSpec,
  type Reservation,
  type ReserveCost,
  type ReserveResult,
  type Usage,
  type Windows,
} from './limiter.js';

const RESERVE_SCRIPT = `
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local costs = {ARGV[5], ARGV[5], ARGV[6], ARGV[7]}
local ttls = {ARGV[8], ARGV[9], ARGV[8], ARGV[10]}
if limits[4] >= 0 and ARGV[11] == '1' and redis.call('EXISTS', KEYS[4]) == 0 then
  return {-1, 0, 0, 0, 0}
end
local used = {0, 0, 0, 0}
local ok = 1
for i = 1, 4 do
  if limits[i] >= 0 then
    used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used[i] + tonumber(costs[i]) > limits[i] then ok = 0 end
  end
end
if ok == 1 then
  for i = 1, 4 do
    if limits[i] >= 0 then
      redis.call('INCRBY', KEYS[i], costs[i])
      if ttls[i] ~= '0' then redis.call('PEXPIRE', KEYS[i], ttls[i]) end
    end
  end
end
return {ok, used[1], used[2], used[3], used[4]}
`;

/** Adds a delta to existing counters only (an ended window's key may be gone), never below 0, keeping the TTL. */
const ADJUST_SCRIPT = `
for i = 1, 2 do
  if ARGV[i] ~= '0' and redis.call('EXISTS', KEYS[i]) == 1 then
    local value = redis.call('INCRBY', KEYS[i], ARGV[i])
    if value < 0 then redis.call('SET', KEYS[i], '0', 'KEEPTTL') end
  end
end
return 1
`;

interface LimiterCommands {
  chatgateLimiterReserve(...args: (string | number)[]): Promise<[number, number, number, number, number]>;
  chatgateLimiterAdjust(...args: (string | number)[]): Promise<number>;
}

export interface RedisLimiterOptions {
  /**
   * A `redis://` URL (the limiter owns and closes the connection; while Redis is down every
   * call fails at once, see util/redis-client.ts) or a client (left open on close).
   */
  redis: string | Redis;
  /** Where a URL's connection logs going down and coming back. */
  logger?: RedisStateLogger;
  /** Prepended to every key (tests, tenants); default `chatgate:limits:`. */
  keyPrefix?: string;
  /** How long a key outlives its window, default 60 s. */
  expiryMarginMs?: number;
  /** Spend already recorded when a subject's budget key is missing (e.g. from the audit log). */
  initialSpend?: InitialSpend;
  /** Options for a client created from a URL. */
  redisOptions?: RedisOptions;
}

export class RedisLimiter implements Limiter {
  readonly #redis: Redis & LimiterCommands;
  /** The connection made from a URL (null for a client passed in). */
  readonly #connection: RedisConnection | null;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #margin: number;
  readonly #initialSpend: InitialSpend | undefined;
  readonly #seeding = new Map<string, Promise<void>>();

  constructor(options: RedisLimiterOptions) {
    this.#connection =
      typeof options.redis === 'string'
        ? createRedisConnection({ url: options.redis, purpose: 'rate-limit counters', logger: options.logger, ...(options.redisOptions ? { redisOptions: options.redisOptions } : {}) })
        : null;
    const client = this.#connection?.client ?? (options.redis as Redis);
    this.#owned = this.#connection !== null;
    client.defineCommand('chatgateLimiterReserve', { numberOfKeys: 4, lua: RESERVE_SCRIPT });
    client.defineCommand('chatgateLimiterAdjust', { numberOfKeys: 2, lua: ADJUST_SCRIPT });
    this.#redis = client as Redis & LimiterCommands;
    this.#prefix = options.keyPrefix ?? 'chatgate:limits:';
    this.#margin = options.expiryMarginMs ?? 60_000;
    this.#initialSpend = options.initialSpend;
  }

  async reserve(subject: string, limits: LimitSpec, cost: ReserveCost, now: number = Date.now()): Promise<ReserveResult> {
    validateInput(limits, cost);
    const windows = windowsAt(limits, now);
    const keys = this.#keys(subject, windows.minute.start, windows.day.start, limits.budgetPeriod ?? null, windows.budget?.start ?? null);
    const ttl = (end: number | null) => (end === null ? 0 : Math.max(1, end - now + this.#margin));
    const args = [
      ...keys,
      limits.rpm ?? -1,
      limits.rpd ?? -1,
      limits.tpm ?? -1,
      windows.budget ? limits.budgetMicros! : -1,
      cost.requests,
      cost.tokens,
      cost.micros,
      ttl(windows.minute.end),
      ttl(windows.day.end),
      windows.budget ? ttl(windows.budget.end) : 0,
    ];
    await this.#connection?.available();
    for (let attempt = 0; ; attempt++) {
      const seedable = this.#initialSpend !== undefined && attempt < 3;
      const [ok, rpm, rpd, tpm, budget] = await this.#redis.chatgateLimiterReserve(...args, seedable ? '1' : '0');
      if (ok === -1) {
        await this.#seed(subject, keys[3], windows, now);
        continue;
      }
      const usage: Usage = { rpm, rpd, tpm, budget };
      if (ok === 1) {
        return { ok: true, reservation: newReservation(subject, limits, cost, windows, now), state: stateOf(limits, usageAfter(usage, cost), windows, now) };
      }
      const refusal = refusalFor(limits, usage, cost, windows, now);
      if (!refusal) throw new Error('RedisLimiter: the script refused a request the limits admit');
      return refusal;
    }
  }

  async settle(reservation: Reservation, actual: ActualUsage): Promise<void> {
    if (reservation.closed) return;
    reservation.closed = true;
    await this.#adjust(reservation, Math.round(actual.tokens) - reservation.tokens, Math.round(actual.micros) - reservation.micros);
  }

  async release(reservation: Reservation): Promise<void> {
    if (reservation.closed) return;
    reservation.closed = true;
    await this.#adjust(reservation, -reservation.tokens, -reservation.micros);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #adjust(reservation: Reservation, tokenDelta: number, microDelta: number): Promise<void> {
    if (reservation.tokenWindowStart === null) tokenDelta = 0;
    if (reservation.budgetPeriodStart === null) microDelta = 0;
    if (tokenDelta === 0 && microDelta === 0) return;
    const base = this.#base(reservation.subject);
    const tpmKey = `${base}:tpm:${reservation.tokenWindowStart ?? 0}`;
    const budgetKey = `${base}:budget:${reservation.budgetPeriod ?? 'none'}:${reservation.budgetPeriodStart ?? 0}`;
    await this.#redis.chatgateLimiterAdjust(tpmKey, budgetKey, tokenDelta, microDelta);
  }

  /** One `initialSpend` call per key at a time in this instance (others instances: SET NX keeps the first). */
  #seed(subject: string, key: string, windows: Windows, now: number): Promise<void> {
    let pending = this.#seeding.get(key);
    if (!pending) {
      pending = this.#seedOnce(subject, key, windows, now).finally(() => this.#seeding.delete(key));
      this.#seeding.set(key, pending);
    }
    return pending;
  }

  async #seedOnce(subject: string, key: string, windows: Windows, now: number): Promise<void> {
    const window = windows.budget!;
    const spend = Math.max(0, Math.round(await this.#initialSpend!(subject, window.start)));
    if (window.end === null) await this.#redis.set(key, spend, 'NX');
    else await this.#redis.set(key, spend, 'PX', Math.max(1, window.end - now + this.#margin), 'NX');
  }

  #base(subject: string): string {
    return `${this.#prefix}{${subject}}`;
  }

  #keys(subject: string, minuteStart: number, dayStart: number, period: string | null, periodStart: number | null): [string, string, string, string] {
    const base = this.#base(subject);
    return [`${base}:rpm:${minuteStart}`, `${base}:rpd:${dayStart}`, `${base}:tpm:${minuteStart}`, `${base}:budget:${period ?? 'none'}:${periodStart ?? 0}`];
  }
}
