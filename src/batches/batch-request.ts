/**
 * Runs one line of a batch: the request goes through Chatgate's own HTTP pipeline
 * (`app.fetch` with an internal call: the batch creator's key, scopes, limits, routing, cache,
 * PII redaction, guardrails, usage and audit, exactly as a live request), within the model's
 * batch concurrency. Passing failures (429 rate limits, 5xx, 503 overload) are retried with
 * backoff, honouring `retry-after`; the last answer is what the line records. Produces the
 * line of the output (2xx) or error file in OpenAI's format.
 */
import { randomAlphanumeric } from '../openai/ids.js';
import type { InternalCall } from '../app-env.js';
import type { Principal } from '../auth/principal.js';
import { ItemDeferred } from '../jobs/worker.js';
import { abortableDelay } from '../util/abortable-delay.js';
import type { ValidLine } from './batch-input.js';
import type { ModelConcurrency } from './model-concurrency.js';

export type InternalFetch = (request: Request, env: { internal: InternalCall }) => Response | Promise<Response>;

/** One line of a batch's output or error file. */
export interface BatchResultLine {
  id: string;
  custom_id: string | null;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

export interface LineRunOptions {
  fetch: InternalFetch;
  limits: ModelConcurrency;
  /** Attempts for passing failures; the last answer is recorded. */
  maxAttempts: number;
  /** First retry delay without `retry-after`; doubles per attempt (with jitter), at most 30 s. */
  retryBaseMs?: number;
}

/** 429s that waiting does not cure (a spent budget) are final at once. */
const FINAL_429_CODES = new Set(['insufficient_quota']);
const MAX_RETRY_DELAY_MS = 30_000;

export function newBatchRequestId(): string {
  return `batch_req_${randomAlphanumeric(24)}`;
}

function retryable(status: number, code: unknown): boolean {
  if (status === 429) return !FINAL_429_CODES.has(String(code));
  return status === 500 || status === 502 || status === 503 || status === 504;
}

function retryDelayMs(response: Response | null, attempt: number, baseMs: number): number {
  const header = response?.headers.get('retry-after');
  const seconds = header === null || header === undefined ? Number.NaN : Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(MAX_RETRY_DELAY_MS, seconds * 1000);
  const exponential = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** (attempt - 1));
  return exponential / 2 + Math.random() * (exponential / 2);
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Waits, unless `stopWaiting` fires first: then the line was not run (ItemDeferred). */
async function unlessStopped<T>(wait: (signal: AbortSignal) => Promise<T>, signal: AbortSignal, stopWaiting: AbortSignal | undefined): Promise<T> {
  if (stopWaiting === undefined) return wait(signal);
  if (stopWaiting.aborted) throw new ItemDeferred('The batch is stopping');
  try {
    return await wait(AbortSignal.any([signal, stopWaiting]));
  } catch (error) {
    if (!signal.aborted && stopWaiting.aborted) throw new ItemDeferred('The batch is stopping');
    throw error;
  }
}

/**
 * Runs the line; resolves with the result line and whether it succeeded (2xx). Rejects when
 * `signal` aborts (the worker stops or loses the batch), and with ItemDeferred when
 * `stopWaiting` fires (cancelled, expired) before the request is sent or while it waits to be
 * retried: a request in flight is always let finish.
 */
/** Who a line runs as, looked up just before each attempt: a principal, or the refusal to record (a revoked key). */
export type CallerCheck = () => Promise<{ principal: Principal } | { refusal: NonNullable<BatchResultLine['response']> }>;

export async function runBatchLine(
  line: ValidLine,
  body: string,
  endpoint: string,
  caller: { check: CallerCheck; clientIp: string | null; origin?: string | null },
  options: LineRunOptions,
  signal: AbortSignal,
  stopWaiting?: AbortSignal,
): Promise<{ result: BatchResultLine; ok: boolean }> {
  const id = newBatchRequestId();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (caller.origin) headers.origin = caller.origin;
  const baseMs = options.retryBaseMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    const release = await unlessStopped((waitSignal) => options.limits.acquire(line.model, waitSignal), signal, stopWaiting);
    // Checked once the line may run (it may have waited long for its slot): a key revoked meanwhile stops it.
    let who: Awaited<ReturnType<CallerCheck>>;
    try {
      who = await caller.check();
    } catch (error) {
      release();
      throw error;
    }
    if ('refusal' in who) {
      release();
      return { result: { id, custom_id: line.customId, response: who.refusal, error: null }, ok: false };
    }
    const internal: InternalCall = { principal: who.principal, clientIp: caller.clientIp, quiet: true };
    let response: Response | null = null;
    let answer: unknown;
    let failure: Error | null = null;
    try {
      response = await options.fetch(new Request(`http://chatgate.internal${endpoint}`, { method: 'POST', headers, body, signal }), { internal });
      answer = await readBody(response);
    } catch (error) {
      signal.throwIfAborted();
      failure = error instanceof Error ? error : new Error(String(error));
    } finally {
      release();
    }
    const status = response?.status ?? 0;
    const code = (answer as { error?: { code?: unknown } } | undefined)?.error?.code;
    const again = failure !== null || retryable(status, code);
    if (again && attempt < options.maxAttempts) {
      const delayMs = retryDelayMs(response, attempt, baseMs);
      await unlessStopped((waitSignal) => abortableDelay(delayMs, waitSignal), signal, stopWaiting);
      continue;
    }
    if (response === null) {
      return {
        result: { id, custom_id: line.customId, response: null, error: { code: 'internal_error', message: failure?.message || 'The request failed' } },
        ok: false,
      };
    }
    const requestId = response.headers.get('x-request-id') ?? '';
    return {
      result: { id, custom_id: line.customId, response: { status_code: status, request_id: requestId, body: answer }, error: null },
      ok: status >= 200 && status < 300,
    };
  }
}
