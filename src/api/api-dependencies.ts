/** What the API routes need, created once by the server and passed in (no singletons). */
import type { Logger } from 'pino';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { TokenCounters } from '../tokens/token-counter.js';
import type { Usage } from '../openai/responses.js';
import type { AuditRecord } from '../storage/spec.js';
import type { Metering } from './request-metering.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { PiiConfig } from '../config/schema.js';
import type { GuardrailsConfig, ModerationConfig } from '../config/schema.js';

export interface RequestRecorder {
  /** Synchronous and cheap: the recorder batches writes off the request path. */
  record(entry: AuditRecord): void;
}

export interface ApiDependencies {
  models: ModelRegistry;
  tokenCounters: TokenCounters;
  recorder: RequestRecorder;
  /** Rate limits, budgets and prices. */
  metering: Metering;
  /** Keep request and response bodies in the audit log. */
  auditBodies: boolean;
  logger: Logger;
  /** Largest accepted request body, in bytes (413 beyond). */
  maxBodyBytes: number;
  /** The response cache (docs/cache.md); absent or null: nothing is cached. */
  responseCache?: ResponseCache | null;
  /** Top-level `guardrails` of the config (docs/guardrails.md); models may override. */
  guardrails?: GuardrailsConfig;
  /** Who answers `POST /v1/moderations`; absent: 400 moderation_not_configured. */
  moderation?: ModerationConfig;
  /** The top-level `pii` section (docs/pii.md); absent: policy off, audit bodies masked with all detectors. */
  pii?: PiiConfig | null;
}

export type { Usage };
