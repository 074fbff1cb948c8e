/**
 * The response cache: a back end (memory, SQLite or Redis) for exact matches and, for the
 * models configured with it, a semantic index. Every failure of a back end or of the
 * embedding model is logged and treated as a miss (or a skipped write): the cache never
 * fails a request.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CacheConfig, Config, ModelConfig } from '../config/schema.js';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { EmbeddingRequest } from '../openai/embedding-request.js';
import { MemoryCacheBackend, RedisCacheBackend, SqliteCacheBackend, type CacheBackend } from './cache-backends.js';
import { isCacheable, parseCachedAnswer, type CachedAnswer } from './cached-answer.js';
import { SemanticIndex } from './semantic-index.js';

export interface SemanticPolicy {
  embeddingModel: string;
  threshold: number;
  maxEntries: number;
}

/** The cache settings in force for one model. */
export interface CachePolicy {
  ttlMs: number;
  deterministicOnly: boolean;
  semantic: SemanticPolicy | null;
}

export interface ResponseCacheOptions {
  config: CacheConfig;
  backend: CacheBackend;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** Resolves `semantic.embedding_model` to a model with embeddings. */
  models?: ModelRegistry;
  now?: () => number;
}

/** Warn about a failing back end at most this often. */
const WARN_INTERVAL_MS = 10_000;

export class ResponseCache {
  readonly backend: CacheBackend;
  readonly #config: CacheConfig;
  readonly #logger: Pick<Logger, 'warn' | 'debug'>;
  readonly #models: ModelRegistry | undefined;
  readonly #now: () => number;
  readonly #semantic = new Map<string, SemanticIndex>();
  readonly #policies = new WeakMap<ModelConfig, CachePolicy | null>();
  #lastWarning = 0;

  constructor(options: ResponseCacheOptions) {
    this.backend = options.backend;
    this.#config = options.config;
    this.#logger = options.logger;
    this.#models = options.models;
    this.#now = options.now ?? Date.now;
  }

  /** The model's cache settings, or null when its answers are not cached. */
  policyFor(model: ModelConfig): CachePolicy | null {
    let policy = this.#policies.get(model);
    if (policy === undefined) {
      const own = model.cache;
      const enabled = own?.enabled ?? this.#config.enabled;
      policy = enabled
        ? {
            ttlMs: (own?.ttl_seconds ?? this.#config.ttl_seconds) * 1000,
            deterministicOnly: own?.deterministic_only ?? this.#config.deterministic_only,
            semantic: own?.semantic ? { embeddingModel: own.semantic.embedding_model, threshold: own.semantic.threshold, maxEntries: own.semantic.max_entries } : null,
          }
        : null;
      this.#policies.set(model, policy);
    }
    return policy;
  }

  #warn(message: string, error: unknown): void {
    const now = this.#now();
    if (now - this.#lastWarning < WARN_INTERVAL_MS) return;
    this.#lastWarning = now;
    this.#logger.warn({ err: error, backend: this.backend.name }, message);
  }

  /** The cached answer of a key, or null (a miss, also when the back end fails). */
  async get(key: string, kind: CachedAnswer['kind']): Promise<CachedAnswer | null> {
    let text: string | null;
    try {
      text = this.backend instanceof MemoryCacheBackend ? this.backend.getNow(key) : await this.backend.get(key);
    } catch (error) {
      this.#warn('The response cache could not be read; serving as a miss', error);
      return null;
    }
    return text === null ? null : parseCachedAnswer(text, kind);
  }

  /** Stores a complete answer (never waits, never throws). Returns whether it was stored. */
  set(key: string, answer: CachedAnswer, ttlMs: number): boolean {
    if (!isCacheable(answer)) return false;
    const text = JSON.stringify(answer);
    if (Buffer.byteLength(text) > this.#config.max_entry_bytes) return false;
    try {
      this.backend.set(key, text, ttlMs).catch((error: unknown) => this.#warn('The response cache could not be written', error));
    } catch (error) {
      this.#warn('The response cache could not be written', error);
      return false;
    }
    return true;
  }

  /** The embedding of a text with the policy's embedding model, or null when it fails. */
  async embed(policy: SemanticPolicy, text: string, signal: AbortSignal, requestId: string): Promise<Float32Array | null> {
    const model = this.#models?.find(policy.embeddingModel);
    if (!model?.provider.embed) return null;
    try {
      const request = { model: model.config.name, input: text } as EmbeddingRequest;
      const result = await model.provider.embed(request, { model: model.config, signal, requestId });
      return result.embeddings[0] ?? null;
    } catch (error) {
      this.#warn(`The semantic cache could not embed with '${policy.embeddingModel}'; serving as a miss`, error);
      return null;
    }
  }

  #index(modelName: string, policy: SemanticPolicy): SemanticIndex {
    let index = this.#semantic.get(modelName);
    if (!index) {
      index = new SemanticIndex({ maxEntries: policy.maxEntries, now: this.#now });
      this.#semantic.set(modelName, index);
    }
    return index;
  }

  /** The most similar cached answer at or above the threshold, with its similarity. */
  nearest(modelName: string, policy: SemanticPolicy, scope: string, vector: Float32Array): { answer: CachedAnswer; similarity: number } | null {
    const found = this.#index(modelName, policy).nearest(scope, vector);
    return found && found.similarity >= policy.threshold ? found : null;
  }

  addSemantic(modelName: string, policy: SemanticPolicy, scope: string, vector: Float32Array, answer: CachedAnswer, ttlMs: number): void {
    if (!isCacheable(answer)) return;
    this.#index(modelName, policy).add(scope, vector, answer, ttlMs);
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}

export class CacheConfigError extends Error {}

/**
 * The server's response cache from the config, or null when no model caches. Checks that
 * every semantic `embedding_model` is a configured model with embeddings.
 */
export function createResponseCache(options: { config: Config; dataDirectory: string; models: ModelRegistry; logger: Logger }): ResponseCache | null {
  const { config, models } = options;
  const cached = config.models.filter((model) => model.cache?.enabled ?? config.cache.enabled);
  for (const model of config.models) {
    const semantic = model.cache?.semantic;
    if (!semantic) continue;
    const embedding = models.find(semantic.embedding_model);
    if (!embedding) throw new CacheConfigError(`models: '${model.name}': cache.semantic.embedding_model '${semantic.embedding_model}' is not a configured model`);
    if (!embedding.provider.embed) {
      throw new CacheConfigError(`models: '${model.name}': cache.semantic.embedding_model '${semantic.embedding_model}' has no embeddings (provider ${embedding.config.provider})`);
    }
  }
  if (cached.length === 0) return null;
  let backend: CacheBackend;
  switch (config.cache.backend) {
    case 'memory':
      backend = new MemoryCacheBackend({ maxEntries: config.cache.max_entries });
      break;
    case 'sqlite':
      backend = new SqliteCacheBackend({ path: join(options.dataDirectory, 'cache.db') });
      break;
    case 'redis':
      if (!config.redis_url) throw new CacheConfigError("cache.backend: 'redis' needs redis_url");
      backend = new RedisCacheBackend({ url: config.redis_url, logger: options.logger });
      break;
  }
  options.logger.debug({ backend: backend.name, models: cached.map((model) => model.name) }, 'Response cache on');
  return new ResponseCache({ config: config.cache, backend, logger: options.logger, models });
}
