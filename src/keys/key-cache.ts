/**
 * A cache of API key records for the authenticator, shared by all requests of an instance.
 *
 * Freshness: the store's `lastChange()` (the largest `updatedAt`, one cheap query) is read
 * at most every `checkIntervalMs` (250 ms), by one request at a time; when it differs from
 * the value the cache was filled under, everything is dropped. A change made through another
 * instance is therefore seen within ~250 ms plus one query, and a hot key costs no query
 * per request. Entries also expire after `maxAgeMs` as a backstop (clock skew between
 * instances, two changes in one millisecond). Unknown prefixes are cached too (briefly,
 * in a separate, smaller map), so a flood of wrong keys does not reach the database, and
 * concurrent lookups of the same prefix share one query. Both maps are bounded (LRU).
 */
import type { ApiKeyRecord, KeyStore } from '../storage/spec.js';

export interface KeyCacheOptions {
  /** How often `lastChange()` is read at most, in ms (≤ 500 keeps cross-instance changes under 1 s). */
  checkIntervalMs?: number;
  /** The longest any entry lives, in ms. */
  maxAgeMs?: number;
  /** How long an unknown prefix is remembered, in ms. */
  negativeTtlMs?: number;
  maxEntries?: number;
  maxNegativeEntries?: number;
  now?: () => number;
}

interface Entry<T> {
  value: T;
  storedAt: number;
}

export class KeyCache {
  private readonly checkIntervalMs: number;
  private readonly maxAgeMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly maxNegativeEntries: number;
  private readonly now: () => number;
  private readonly byPrefixEntries = new Map<string, Entry<ApiKeyRecord[]>>();
  private readonly negative = new Map<string, number>();
  private readonly byIdEntries = new Map<string, Entry<ApiKeyRecord | null>>();
  private readonly pending = new Map<string, Promise<unknown>>();
  private version: number | null = null;
  private checkedAt = -Infinity;
  private checking: Promise<void> | null = null;
  /** Bumped on every clear, so a lookup started before a clear does not store stale data. */
  private generation = 0;
  /** Database reads done (for tests and metrics). */
  queries = 0;

  constructor(
    private readonly store: KeyStore,
    options: KeyCacheOptions = {},
  ) {
    this.checkIntervalMs = Math.min(options.checkIntervalMs ?? 250, 500);
    this.maxAgeMs = options.maxAgeMs ?? 30_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 2_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxNegativeEntries = options.maxNegativeEntries ?? 1_000;
    this.now = options.now ?? Date.now;
  }

  /** Drops everything (called after a change made through this instance). */
  invalidate(): void {
    this.byPrefixEntries.clear();
    this.byIdEntries.clear();
    this.negative.clear();
    this.pending.clear();
    this.generation += 1;
    this.checkedAt = -Infinity;
  }

  private async fresh(): Promise<void> {
    if (this.now() - this.checkedAt < this.checkIntervalMs) return;
    this.checking ??= (async () => {
      try {
        this.queries += 1;
        const version = await this.store.lastChange();
        if (version !== this.version) {
          this.invalidate();
          this.version = version;
        }
        this.checkedAt = this.now();
      } finally {
        this.checking = null;
      }
    })();
    await this.checking;
  }

  private static touch<T>(map: Map<string, T>, key: string, value: T, max: number): void {
    map.delete(key);
    map.set(key, value);
    while (map.size > max) map.delete(map.keys().next().value!);
  }

  private async load<T>(pendingKey: string, read: () => Promise<T>, store: (value: T) => void): Promise<T> {
    const running = this.pending.get(pendingKey) as Promise<T> | undefined;
    if (running) return running;
    const generation = this.generation;
    const promise: Promise<T> = (async () => {
      this.queries += 1;
      const value = await read();
      if (generation === this.generation) store(value);
      return value;
    })();
    const forget = () => {
      if (this.pending.get(pendingKey) === promise) this.pending.delete(pendingKey);
    };
    promise.then(forget, forget);
    this.pending.set(pendingKey, promise);
    return promise;
  }

  /** The keys whose current or previous prefix is `prefix`. */
  async byPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    await this.fresh();
    const now = this.now();
    const unknownAt = this.negative.get(prefix);
    if (unknownAt !== undefined) {
      if (now - unknownAt < this.negativeTtlMs) return [];
      this.negative.delete(prefix);
    }
    const entry = this.byPrefixEntries.get(prefix);
    if (entry && now - entry.storedAt < this.maxAgeMs) {
      KeyCache.touch(this.byPrefixEntries, prefix, entry, this.maxEntries);
      return entry.value;
    }
    return this.load(`p:${prefix}`, () => this.store.findByPrefix(prefix), (records) => {
      if (records.length === 0) KeyCache.touch(this.negative, prefix, this.now(), this.maxNegativeEntries);
      else KeyCache.touch(this.byPrefixEntries, prefix, { value: records, storedAt: this.now() }, this.maxEntries);
    });
  }

  async byId(id: string): Promise<ApiKeyRecord | null> {
    await this.fresh();
    const entry = this.byIdEntries.get(id);
    const now = this.now();
    if (entry && now - entry.storedAt < (entry.value === null ? this.negativeTtlMs : this.maxAgeMs)) {
      KeyCache.touch(this.byIdEntries, id, entry, this.maxEntries);
      return entry.value;
    }
    return this.load(`i:${id}`, () => this.store.get(id), (record) => {
      KeyCache.touch(this.byIdEntries, id, { value: record, storedAt: this.now() }, this.maxEntries);
    });
  }
}
