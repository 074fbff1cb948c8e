/**
 * The response cache around a chat or legacy completion request (docs/cache.md). The route
 * calls `chatCache` / `completionCache` after its checks and before reserving and calling
 * the provider:
 *
 *   const cache = await chatCache(context, dependencies, model, request);
 *   if (cache.hit) return cache.hit;                     // served from the cache
 *   … cache.keep(result) / cache.keepStream(parts) …     // a miss: store the answer
 *
 * Request header `x-chatgate-cache`: `bypass` (neither read nor write) or `refresh` (do not
 * read, do write). Response header `x-chatgate-cache`: `hit`, `miss` or `bypass` (absent when
 * the model's answers are not cached); `x-chatgate-cache-similarity` on a semantic hit.
 *
 * A hit calls no provider, gets a fresh id and created time, reports the cached usage with
 * every prompt token as `cached_tokens`, costs 0 and counts as one request for the key's
 * request limits (rpm / rpd) but uses no tokens of its tpm and nothing of its budget.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ChatResult, CompletionResult, StreamPart } from '../providers/spec.js';
import { invalidRequest } from '../errors/gateway-error.js';
import { setResponseHeader } from '../middleware/response-headers.js';
import { ChatChunkRenderer } from '../streaming/chat-chunk-renderer.js';
import { CompletionChunkRenderer } from '../streaming/completion-chunk-renderer.js';
import { chatCacheKey, completionCacheKey, isDeterministic, semanticSplit } from '../cache/cache-key.js';
import { AnswerCollector, hitUsage, replayParts, type CachedAnswer } from '../cache/cached-answer.js';
import type { CachePolicy, ResponseCache } from '../cache/response-cache.js';
import type { ApiDependencies } from './api-dependencies.js';
import { toChatCompletion } from './chat-completions.js';
import { toCompletion } from './completions.js';
import { newObjectId, unixSeconds } from './ids.js';
import { serveProviderStream } from './provider-stream.js';
import { setUsage } from './request-recording.js';
import { reserveRequest } from './request-metering.js';
import { restoreChatResult, restoreCompletionResult } from './pii-policy.js';

export const CACHE_HEADER = 'x-chatgate-cache';
export const SIMILARITY_HEADER = 'x-chatgate-cache-similarity';

export interface CacheSession<Result> {
  /** The response of a hit; null on a miss (call the provider, then `keep` / `keepStream`). */
  hit: Response | null;
  /** Stores a whole answer (when complete and successful); returns it unchanged. */
  keep(result: Result): Result;
  /** Passes the parts through and stores the answer they make once the stream completes. */
  keepStream(parts: AsyncIterable<StreamPart>): AsyncIterable<StreamPart>;
}

const passThrough: CacheSession<never> = { hit: null, keep: (result) => result, keepStream: (parts) => parts };

type Mode = 'default' | 'bypass' | 'refresh';

function requestedMode(context: Context<AppEnv>): Mode {
  const value = context.req.header(CACHE_HEADER)?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'default') return 'default';
  if (value === 'bypass' || value === 'refresh') return value;
  throw invalidRequest(`Invalid value for header '${CACHE_HEADER}': expected 'bypass' or 'refresh', got '${value.slice(0, 40)}'.`, null, 'invalid_header');
}

interface Lookup<Request> {
  kind: CachedAnswer['kind'];
  key: (modelName: string, request: Request) => string;
  semantic: (modelName: string, request: Request) => { scope: string; text: string } | null;
  respond: (context: Context<AppEnv>, dependencies: ApiDependencies, model: ResolvedModel, request: Request, answer: CachedAnswer) => Promise<Response>;
}

async function lookup<Request extends { stream?: boolean | null; temperature?: number | null; seed?: number | null }, Result extends ChatResult | CompletionResult>(
  spec: Lookup<Request>,
  context: Context<AppEnv>,
  dependencies: ApiDependencies,
  model: ResolvedModel,
  request: Request,
): Promise<CacheSession<Result>> {
  const mode = requestedMode(context);
  const cache: ResponseCache | null | undefined = dependencies.responseCache;
  const policy: CachePolicy | null | undefined = cache?.policyFor(model.config);
  if (!cache || !policy) return passThrough;
  if (mode === 'bypass' || context.get('principal')?.settings.cache === 'off' || (policy.deterministicOnly && !isDeterministic(request))) {
    setResponseHeader(context, CACHE_HEADER, 'bypass');
    return passThrough;
  }
  const modelName = model.config.name;
  const key = spec.key(modelName, request);
  const answer = mode === 'refresh' ? null : await cache.get(key, spec.kind);
  if (answer) return { ...passThrough, hit: await spec.respond(context, dependencies, model, request, answer) };

  const semantic = policy.semantic;
  const split = semantic ? spec.semantic(modelName, request) : null;
  const vector = semantic && split ? await cache.embed(semantic, split.text, context.req.raw.signal, context.get('requestId')) : null;
  if (semantic && split && vector && mode !== 'refresh') {
    const nearest = cache.nearest(modelName, semantic, split.scope, vector);
    if (nearest && nearest.answer.kind === spec.kind) {
      setResponseHeader(context, SIMILARITY_HEADER, nearest.similarity.toFixed(4));
      return { ...passThrough, hit: await spec.respond(context, dependencies, model, request, nearest.answer) };
    }
  }

  setResponseHeader(context, CACHE_HEADER, 'miss');
  context.set('cacheHit', false);
  const store = (result: Result | null) => {
    if (!result) return;
    const entry = { kind: spec.kind, result } as CachedAnswer;
    cache.set(key, entry, policy.ttlMs);
    if (semantic && split && vector) cache.addSemantic(modelName, semantic, split.scope, vector, entry, policy.ttlMs);
  };
  return {
    hit: null,
    keep: (result) => {
      store(result);
      return result;
    },
    keepStream: (parts) =>
      (async function* collecting() {
        const collector = new AnswerCollector();
        for await (const part of parts) {
          collector.add(part);
          yield part;
        }
        // Reached only when the stream completed (not when the client left or it failed).
        store((spec.kind === 'chat' ? collector.chatResult() : collector.completionResult()) as Result | null);
      })(),
  };
}

/** Marks the request as a hit: header, audit flag, and one request counted against the key's request limits. */
async function beginHit(context: Context<AppEnv>, dependencies: ApiDependencies, model: ResolvedModel): Promise<void> {
  context.set('cacheHit', true);
  setResponseHeader(context, CACHE_HEADER, 'hit');
  await reserveRequest(context, dependencies.metering, model.config, 0, 0);
}

const chatLookup: Lookup<ChatCompletionRequest> = {
  kind: 'chat',
  key: chatCacheKey,
  semantic: semanticSplit,
  async respond(context, dependencies, model, request, answer) {
    await beginHit(context, dependencies, model);
    const result = answer.result as ChatResult;
    const usage = hitUsage(result.usage);
    if (!request.stream) {
      setUsage(context, usage);
      const { id: _id, created: _created, ...rest } = result;
      return context.json(toChatCompletion(await restoreChatResult(context, { ...rest, usage }), model.config.name));
    }
    const renderer = new ChatChunkRenderer(
      { id: newObjectId('chatcmpl-'), created: unixSeconds(), model: model.config.name, systemFingerprint: null },
      request.stream_options?.include_usage === true,
    );
    return serveProviderStream(context, model, dependencies, renderer, () => replayParts(answer, usage));
  },
};

const completionLookup: Lookup<CompletionRequest> = {
  kind: 'completion',
  key: completionCacheKey,
  semantic: () => null,
  async respond(context, dependencies, model, request, answer) {
    await beginHit(context, dependencies, model);
    const result = answer.result as CompletionResult;
    const usage = hitUsage(result.usage);
    if (!request.stream) {
      setUsage(context, usage);
      const { id: _id, created: _created, ...rest } = result;
      return context.json(toCompletion(await restoreCompletionResult(context, { ...rest, usage }), model.config.name));
    }
    const renderer = new CompletionChunkRenderer(
      { id: newObjectId('cmpl-'), created: unixSeconds(), model: model.config.name, systemFingerprint: null },
      request.stream_options?.include_usage === true,
    );
    return serveProviderStream(context, model, dependencies, renderer, () => replayParts(answer, usage));
  },
};

export function chatCache(context: Context<AppEnv>, dependencies: ApiDependencies, model: ResolvedModel, request: ChatCompletionRequest): Promise<CacheSession<ChatResult>> {
  return lookup(chatLookup, context, dependencies, model, request);
}

export function completionCache(context: Context<AppEnv>, dependencies: ApiDependencies, model: ResolvedModel, request: CompletionRequest): Promise<CacheSession<CompletionResult>> {
  return lookup(completionLookup, context, dependencies, model, request);
}
