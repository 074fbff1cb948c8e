/**
 * The end of a request: its reservation is settled with the real usage and cost, and its
 * audit record is queued. Non-streamed responses end in the `recordRequests` middleware;
 * streams when their last byte is written (`recordStreamEnd`).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ModelConfig } from '../config/schema.js';
import type { Usage } from '../openai/responses.js';
import type { AuditRecord } from '../storage/spec.js';
import type { StreamOutcome } from '../streaming/stream-response.js';
import type { RequestRecorder } from './api-dependencies.js';
import { costOf, settleRequest, type Metering } from './request-metering.js';
import type { PiiConfig } from '../config/schema.js';
import { Pseudonymizer } from '../pii/index.js';
import { detectOptionsOf, maskAuditBody } from './pii-policy.js';

/** Bodies longer than this are cut in the audit log (with a marker). */
export const AUDIT_BODY_LIMIT = 1_000_000;

export interface RecordingDependencies {
  recorder: RequestRecorder;
  metering: Metering;
  /** Keep request and response bodies in the audit log (config `audit.bodies`). */
  auditBodies: boolean;
  /** The top-level `pii` section: the detectors that redact audited bodies (all when absent). */
  pii?: PiiConfig | null;
}

/** Notes what the request resolved to, for the audit log: the model, who serves it, the end user. */
export function noteModel(context: Context<AppEnv>, model: ModelConfig, user: string | undefined): void {
  context.set('modelName', model.name);
  context.set('providerName', model.provider === 'openai-compatible' ? `openai-compatible:${model.model ?? model.name}` : model.provider);
  if (user) context.set('endUser', user);
}

export function setUsage(context: Context<AppEnv>, usage: Usage): void {
  context.set('usage', usage);
}

function clipped(text: string | undefined | null): string | null {
  if (text === undefined || text === null) return null;
  return text.length <= AUDIT_BODY_LIMIT ? text : `${text.slice(0, AUDIT_BODY_LIMIT)}…[cut at ${AUDIT_BODY_LIMIT} characters]`;
}

/**
 * Text the audit log can store: stores refuse NUL characters (PostgreSQL text cannot hold
 * them), and a request may carry one (a `%00` in its path, a `user` field with `\u0000`).
 * In the path it is written back as `%00`; elsewhere as U+FFFD.
 */
function storable(text: string, replacement = '\ufffd'): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', replacement) : text;
}
function storableOrNull(text: string | null): string | null {
  return text === null ? null : storable(text);
}

/** Who made the request, as the audit log names it: `master`, a key id, or `token:<key id>`. */
function auditKeyId(context: Context<AppEnv>): string | null {
  const principal = context.get('principal');
  if (!principal) return null;
  return principal.tokenId ? `token:${principal.keyId}` : principal.keyId;
}

export interface RequestEnd {
  status: number;
  usage: Usage | null | undefined;
  stream: boolean;
  errorCode: string | null;
  responseBody?: string | null;
}

const NO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

/**
 * Settles the request's reservation (at once) and queues its audit record: at once, or, with
 * `audit.bodies`, once the bodies are redacted (in turns that share the event loop: a
 * megabyte body takes about a second to scan). Never rejects.
 */
export async function finishRequest(context: Context<AppEnv>, dependencies: RecordingDependencies, end: RequestEnd): Promise<void> {
  const modelName = context.get('modelName');
  const cacheHit = context.get('cacheHit');
  // What was used is charged even when the request failed later (a stream cut short); an
  // answer from the response cache costs nothing and uses no tokens of the key's limits.
  const costMicros = cacheHit === true ? (end.usage ? 0 : null) : costOf(dependencies.metering, modelName, end.usage);
  settleRequest(context, dependencies.metering, cacheHit === true && end.usage ? NO_USAGE : end.usage, costMicros);
  const record: AuditRecord = {
    requestId: context.get('requestId'),
    createdAt: Date.now() - Math.round(performance.now() - context.get('startedAt')),
    method: context.req.method,
    path: storable(context.req.path, '%00'),
    model: modelName ?? null,
    provider: context.get('providerName') ?? null,
    status: end.status,
    durationMs: Math.round((performance.now() - context.get('startedAt')) * 100) / 100,
    promptTokens: end.usage?.prompt_tokens ?? null,
    completionTokens: end.usage?.completion_tokens ?? null,
    cachedTokens: end.usage ? (end.usage.prompt_tokens_details?.cached_tokens ?? 0) : null,
    costMicros,
    stream: end.stream,
    cacheHit: cacheHit ?? null,
    errorCode: end.errorCode,
    keyId: auditKeyId(context),
    user: storableOrNull(context.get('endUser') ?? null),
    clientIp: context.get('clientIp') ?? null,
    requestBody: null,
    responseBody: null,
    piiCounts: context.get('piiCounts') ?? null,
  };
  if (dependencies.auditBodies) {
    // Logs never hold raw PII, whatever the request's policy: bodies are redacted (one
    // placeholder map for both, so a value has the same placeholder in request and answer).
    try {
      const options = context.get('pii')?.options ?? detectOptionsOf(dependencies.pii);
      const placeholders = new Pseudonymizer();
      record.requestBody = storableOrNull(clipped(await maskAuditBody(context.get('rawBody'), options, placeholders, AUDIT_BODY_LIMIT)));
      record.responseBody = storableOrNull(clipped(await maskAuditBody(end.responseBody, options, placeholders, AUDIT_BODY_LIMIT)));
    } catch {
      // Never a raw body: without redaction, none.
      record.requestBody = null;
      record.responseBody = null;
    }
  }
  dependencies.recorder.record(record);
}

export function recordStreamEnd(context: Context<AppEnv>, dependencies: RecordingDependencies, outcome: StreamOutcome, responseBody: string | null): Promise<void> {
  const errorCode = outcome.error ? (outcome.error.code ?? outcome.error.type) : outcome.cancelled ? 'client_closed' : null;
  return finishRequest(context, dependencies, {
    status: outcome.error ? outcome.error.status : outcome.cancelled ? 499 : 200,
    usage: outcome.usage,
    stream: true,
    errorCode,
    responseBody,
  });
}
