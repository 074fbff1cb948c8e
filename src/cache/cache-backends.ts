/**
 * Where cached answers live, behind one interface: values are strings (the JSON of a
 * cached answer) with a time to live. Three back ends:
 *
 * - memory: a Map used as an LRU (a read moves the entry to the end; beyond `maxEntries`
 *   the least recently used is dropped), expired entries dropped when read;
 * - sqlite: a table in its own file (`cache.db` in the data dir), rows with an expiry time,
 *   expired rows purged now and then;
 * - redis: `SET key value PX ttl`, shared by every instance that uses the same Redis.
 *
 * A back end may throw; the ResponseCache above turns every failure into a miss.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { createRedisConnection, type RedisStateLogger } from '../util/redis-client.js';
import { openSqliteDatabase, type SqliteDatabase } from '../storage/sqlite/connection.js';

export interface CacheBackend {
  readonly name: 'memory' | 'sqlite' | 'redis';
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

interface MemoryEntry {
  value: string;
  expiresAt: number;
}

export class MemoryCacheBackend implements CacheBackend {
  readonly name = 'memory' as const;
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { maxEntries: number; now?: () => number }) {
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Synchronous read (the memory back end needs no await; used on the hot path). */
  getNow(key: string): string | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    this.#entries.delete(key);
    if (entry.expiresAt <= this.#now()) return null;
    this.#entries.set(key, entry);
    return entry.value;
  }

  async get(key: string): Promise<string | null> {
    return this.getNow(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}

export class SqliteCacheBackend implements CacheBackend {
  readonly name = 'sqlite' as const;
  readonly #database: SqliteDatabase;
  readonly #now: () => number;
  readonly #select;
  readonly #upsert;
  readonly #remove;
  readonly #purge;
  #writes = 0;

  constructor(options: { path: string; now?: () => number }) {
    this.#now = options.now ?? Date.now;
    this.#database = openSqliteDatabase(options.path);
    this.#database.exec(`CREATE TABLE IF NOT EXISTS response_cache (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS response_cache_expiry ON response_cache (expires_at);`);
    this.#select = this.#database.prepare<[string, number], { value: string }>('SELECT value FROM response_cache WHERE key = ? AND expires_at > ?');
    this.#upsert = this.#database.prepare<[string, string, number]>(
      'INSERT INTO response_cache (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
    );
    this.#remove = this.#database.prepare<[string]>('DELETE FROM response_cache WHERE key = ?');
    this.#purge = this.#database.prepare<[number]>('DELETE FROM response_cache WHERE expires_at <= ?');
    this.#purge.run(this.#now());
  }

  async get(key: string): Promise<string | null> {
    return this.#select.get(key, this.#now())?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#upsert.run(key, value, this.#now() + ttlMs);
    if (++this.#writes % 500 === 0) this.#purge.run(this.#now());
  }

  async delete(key: string): Promise<void> {
    this.#remove.run(key);
  }

  /** Expired rows left (for tests). */
  purgeExpired(): number {
    return this.#purge.run(this.#now()).changes;
  }

  async close(): Promise<void> {
    if (this.#database.open) this.#database.close();
  }
}

export class RedisCacheBackend implements CacheBackend {
  readonly name = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: { url: string; prefix?: string; redisOptions?: RedisOptions; logger?: RedisStateLogger }) {
    this.#prefix = options.prefix ?? 'chatgate:cache:';
    // Fail fast rather than queue: a cache that cannot answer at once is a miss. Going
    // down and coming back are logged once each; ioredis reconnects by itself.
    this.#redis = createRedisConnection({
      url: options.url,
      purpose: 'response cache',
      logger: options.logger,
      ...(options.redisOptions ? { redisOptions: options.redisOptions } : {}),
    }).client;
  }

  /** Resolves when connected (rejects after the connect timeout); for tests and start-up. */
  async ready(): Promise<void> {
    if (this.#redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Redis did not become ready')), 3000);
      this.#redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async get(key: string): Promise<string | null> {
    return this.#redis.get(this.#prefix + key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#redis.set(this.#prefix + key, value, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async delete(key: string): Promise<void> {
    await this.#redis.del(this.#prefix + key);
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
