/**
 * A Redis client that fails fast while Redis is down and comes back by itself:
 * - commands are never queued while disconnected (`enableOfflineQueue: false`) and never
 *   retried on another connection: a caller learns at once that Redis cannot answer;
 * - it reconnects every `retryIntervalMs` (250 ms by default), forever, so it is serving
 *   again within about that much of Redis coming back;
 * - its connection errors are handled (ioredis prints "Unhandled error event" to stderr
 *   otherwise) and turned into one log line per change of state: down, back up.
 *
 * `available()` tells a caller whether to send a command: it resolves when Redis is up,
 * rejects at once when it is known down, and while the first connection is still being
 * made waits for its outcome (at most the connect timeout), so that the first requests
 * after a start are not refused.
 */
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

/**
 * ioredis (~25 MB of RSS) is loaded on the first connection, not when this module is
 * imported: a server without `redis_url` never loads it.
 */
function loadRedis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}

export interface RedisStateLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface RedisClientOptions {
  url: string;
  /** What the client is for, in its log lines (`rate-limit counters`, `response cache`). */
  purpose: string;
  logger?: RedisStateLogger | undefined;
  /** Pause between two connection attempts while Redis is down. Default 250 ms. */
  retryIntervalMs?: number;
  /** Longest wait for a connection (and, at start, for the first one). Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Longest wait for a command's answer on an open connection. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** Further ioredis options (they override these). */
  redisOptions?: RedisOptions;
}

export type RedisState = 'starting' | 'up' | 'down';

export interface RedisConnection {
  readonly client: Redis;
  readonly state: RedisState;
  /** Resolves when commands may be sent; rejects at once while Redis is known down. */
  available(): Promise<void>;
}

export class RedisUnavailableError extends Error {
  constructor(reason: string) {
    super(`Redis is unreachable (${reason})`);
    this.name = 'RedisUnavailableError';
  }
}

export function createRedisConnection(options: RedisClientOptions): RedisConnection {
  const retryIntervalMs = options.retryIntervalMs ?? 250;
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const { Redis: RedisClient } = loadRedis();
  const client = new RedisClient(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    retryStrategy: () => retryIntervalMs,
    ...options.redisOptions,
  });
  let state: RedisState = 'starting';
  let lastError = 'not connected yet';
  let firstOutcome: Promise<void> | undefined;
  const settleFirst: (() => void)[] = [];

  const becomeDown = (reason: string) => {
    lastError = reason;
    if (state === 'down') return;
    const wasUp = state === 'up';
    state = 'down';
    for (const resolve of settleFirst.splice(0)) resolve();
    options.logger?.warn({ redis: 'down', purpose: options.purpose, reason }, wasUp ? `Redis (${options.purpose}) is down` : `Redis (${options.purpose}) cannot be reached`);
  };
  client.on('error', (error: Error) => becomeDown(error.message));
  client.on('close', () => {
    if (state === 'up') becomeDown('connection closed');
  });
  client.on('ready', () => {
    const wasDown = state === 'down';
    state = 'up';
    for (const resolve of settleFirst.splice(0)) resolve();
    if (wasDown) options.logger?.info({ redis: 'up', purpose: options.purpose }, `Redis (${options.purpose}) is back up`);
  });

  const waitForFirstOutcome = (): Promise<void> =>
    (firstOutcome ??= new Promise<void>((resolve) => {
      settleFirst.push(resolve);
      setTimeout(resolve, connectTimeoutMs).unref();
    }));

  return {
    client,
    get state() {
      return state;
    },
    async available() {
      if (state === 'starting') await waitForFirstOutcome();
      if (state !== 'up') throw new RedisUnavailableError(lastError);
    },
  };
}
