/**
 * What the provider needs to call one configured upstream model, worked out once per model
 * configuration (URL parsing, header lists) instead of once per request.
 */
import type { OpenAiCompatibleModelConfig } from '../../config/schema.js';

export interface UpstreamTarget {
  /** `scheme://host:port`: the key of the connection pool. */
  readonly origin: string;
  /** Request paths on that origin, e.g. `/v1/chat/completions` (base URL path and query kept). */
  readonly chatPath: string;
  readonly completionsPath: string;
  readonly embeddingsPath: string;
  /** The model name sent upstream. */
  readonly upstreamModel: string;
  /** Flat `[name, value, …]` header lists for undici, without the per-request `x-request-id`. */
  readonly jsonHeaders: readonly string[];
  readonly streamHeaders: readonly string[];
  readonly timeoutMs: number;
  /** Connection timeout (config `connect_timeout_ms`); undefined: undici's default. */
  readonly connectTimeoutMs: number | undefined;
  /** Kept to redact it from upstream error messages. */
  readonly apiKey: string | undefined;
}

export function resolveUpstreamTarget(config: OpenAiCompatibleModelConfig): UpstreamTarget {
  const url = new URL(config.base_url);
  const basePath = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  const apiKey = config.api_key === undefined || config.api_key === '' ? undefined : config.api_key;

  const common = new Map<string, string>([['content-type', 'application/json']]);
  if (apiKey !== undefined) common.set('authorization', `Bearer ${apiKey}`);
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    const lowerName = name.toLowerCase();
    // The request id is per request; hop-by-hop and length headers are undici's business.
    if (lowerName === 'x-request-id' || lowerName === 'content-length' || lowerName === 'host' || lowerName === 'connection') continue;
    common.set(lowerName, value);
  }
  const flatten = (accept: string): string[] => {
    const list: string[] = [];
    for (const [name, value] of common) list.push(name, value);
    if (!common.has('accept')) list.push('accept', accept);
    return list;
  };

  return {
    origin: url.origin,
    chatPath: `${basePath}/chat/completions${url.search}`,
    completionsPath: `${basePath}/completions${url.search}`,
    embeddingsPath: `${basePath}/embeddings${url.search}`,
    upstreamModel: config.model ?? config.name,
    jsonHeaders: flatten('application/json'),
    streamHeaders: flatten('text/event-stream'),
    timeoutMs: config.timeout_ms ?? 600_000,
    connectTimeoutMs: config.connect_timeout_ms,
    apiKey,
  };
}
