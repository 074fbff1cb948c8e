/** What the API routes need, created once by the server and passed in (no singletons). */
import type { Logger } from 'pino';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { TokenCounters } from '../tokens/token-counter.js';
import type { Usage } from '../openai/responses.js';
import type { RequestLogRecord } from '../storage/spec.js';

/** One finished request, as handed to the request log (metadata only, never bodies). */
export type CompletedRequest = RequestLogRecord;

export interface RequestRecorder {
  /** Synchronous and cheap: the recorder batches writes off the request path. */
  record(entry: CompletedRequest): void;
}

export interface ApiDependencies {
  models: ModelRegistry;
  tokenCounters: TokenCounters;
  recorder: RequestRecorder;
  logger: Logger;
  /** Largest accepted request body, in bytes (413 beyond). */
  maxBodyBytes: number;
}

export type { Usage };
