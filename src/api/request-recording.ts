/**
 * Builds the request-log entry of a finished request. Non-streamed responses are
 * recorded by the `recordRequests` middleware; streams when their last byte is written.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Usage } from '../openai/responses.js';
import type { StreamOutcome } from '../streaming/stream-response.js';
import type { CompletedRequest, RequestRecorder } from './api-dependencies.js';

export function setUsage(context: Context<AppEnv>, usage: Usage): void {
  context.set('usage', usage);
}

export function clientAddress(context: Context<AppEnv>): string | null {
  const incoming = (context.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? null;
}

export function completedRequest(
  context: Context<AppEnv>,
  status: number,
  usage: Usage | null | undefined,
  stream: boolean,
  errorCode: string | null,
): CompletedRequest {
  return {
    requestId: context.get('requestId'),
    createdAt: Date.now(),
    method: context.req.method,
    path: context.req.path,
    model: context.get('modelName') ?? null,
    status,
    durationMs: Math.round((performance.now() - context.get('startedAt')) * 100) / 100,
    promptTokens: usage?.prompt_tokens ?? null,
    completionTokens: usage?.completion_tokens ?? null,
    stream,
    errorCode,
    keyId: context.get('principal')?.keyId ?? null,
    clientIp: clientAddress(context),
  };
}

export function recordStreamEnd(context: Context<AppEnv>, recorder: RequestRecorder, outcome: StreamOutcome): void {
  const errorCode = outcome.error ? (outcome.error.code ?? outcome.error.type) : outcome.cancelled ? 'client_closed' : null;
  recorder.record(completedRequest(context, outcome.error ? outcome.error.status : outcome.cancelled ? 499 : 200, outcome.usage, true, errorCode));
}
