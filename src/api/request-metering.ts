/**
 * Rate limits and budgets around one request: before the provider is called, the
 * request's worst case — its prompt tokens (counted with the model's tokenizer) plus the
 * completion tokens it may produce, and what they would cost — is reserved against the
 * key's limits (a 429 when it does not fit); when the request ends, the reservation is
 * settled with the real usage and cost (or released when nothing ran).
 *
 * Exactness: the completion bound is the client's max_tokens; when the client sets none
 * and the key has a token limit or a budget, Chatgate sets max_tokens itself (the model's
 * max_output_tokens, else what fits the context window), so the provider can never
 * produce more than was reserved.
 *
 * The master key has no limits: nothing is reserved for it.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ModelConfig } from '../config/schema.js';
import { limitsFromSettings, rateLimitHeaders, refusalError, reserveWithin, type Limiter, type Reservation } from '../limits/index.js';
import { defaultCompletionBound, hasLimits, type Metering } from '../limits/metering.js';
import type { Usage } from '../openai/responses.js';
import { setResponseHeader } from '../middleware/response-headers.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { TokenCounter, TokenCounters } from '../tokens/token-counter.js';

/** Moved to limits/metering.ts; this re-export goes when the importers switch (issue 14, P1-final). */
export { costOf, defaultCompletionBound, hasLimits, type Metering } from '../limits/metering.js';

/** Reservations by request context (set by `reserveRequest`, consumed by `settleRequest`). */
const reservations = new WeakMap<Context<AppEnv>, Reservation>();

/** Whether the key needs a bounded completion (token limit or budget). */
export function needsCompletionBound(context: Context<AppEnv>): boolean {
  const settings = context.get('principal')?.settings;
  if (!settings) return false;
  return settings.limits.tpm !== undefined || settings.budget !== null;
}

/** The subject whose counters a request uses: the key (its short-lived tokens share them). */
function subjectOf(context: Context<AppEnv>): string | null {
  const principal = context.get('principal');
  if (!principal || principal.isMaster) return null;
  return principal.keyId;
}

/**
 * Reserves the worst case of the request; throws the 429 refusal when it does not fit
 * (after waiting up to the key's `queueSeconds` when set). Sets the x-ratelimit headers.
 */
export async function reserveRequest(context: Context<AppEnv>, metering: Metering, model: ModelConfig, promptTokens: number, completionTokens: number): Promise<void> {
  const subject = subjectOf(context);
  if (subject === null) return;
  const principal = context.get('principal');
  const limits = limitsFromSettings(principal.settings);
  if (!hasLimits(limits)) return;
  const cost = {
    requests: 1,
    tokens: promptTokens + completionTokens,
    micros: metering.prices.worstCaseMicros(model.name, promptTokens, completionTokens) ?? 0,
  };
  const waitMs = principal.settings.queueSeconds * 1000;
  let result: Awaited<ReturnType<Limiter['reserve']>>;
  try {
    result =
      waitMs > 0
        ? await reserveWithin(metering.limiter, subject, limits, cost, { maxWaitMs: waitMs, signal: context.req.raw.signal })
        : await metering.limiter.reserve(subject, limits, cost);
  } catch (error) {
    if (error instanceof GatewayError || context.req.raw.signal.aborted) throw error;
    // Without its counters the gateway cannot keep limits exact: refuse rather than let requests through.
    throw new GatewayError({
      status: 503,
      type: 'server_error',
      code: 'rate_limiter_unavailable',
      headers: { 'retry-after': '1' },
      message: `The rate-limit counters cannot be reached (${error instanceof Error ? error.message : String(error)}), so requests of keys with limits are refused for now. Retry shortly.`,
    });
  }
  if (!result.ok) throw refusalError(result, { subjectLabel: subject });
  reservations.set(context, result.reservation);
  for (const [name, value] of Object.entries(rateLimitHeaders(result.state))) setResponseHeader(context, name, value);
}

/** Settles the request's reservation with what it used (releases it when nothing was used). Never throws. */
export function settleRequest(context: Context<AppEnv>, metering: Metering, usage: Usage | null | undefined, costMicros: number | null): void {
  const reservation = reservations.get(context);
  if (!reservation) return;
  reservations.delete(context);
  const settling = usage
    ? metering.limiter.settle(reservation, { tokens: usage.prompt_tokens + (usage.completion_tokens ?? 0), micros: costMicros ?? 0 })
    : metering.limiter.release(reservation);
  settling.catch(() => {
    // The counters expire with their window; a failed settle only leaves the reservation counted.
  });
}

/** Whether the request's key has any limit (only then are prompts counted and reservations made). */
export function principalHasLimits(context: Context<AppEnv>): boolean {
  const principal = context.get('principal');
  return !!principal && !principal.isMaster && hasLimits(limitsFromSettings(principal.settings));
}

/**
 * Where prompt counting may stop: a request with more tokens than the key's tpm is refused
 * whatever its exact count, so counting stops just past it (the count stays a lower bound
 * of the prompt's, above the limit, and the refusal is the same).
 */
function promptCountLimit(context: Context<AppEnv>): number {
  return context.get('principal')?.settings.limits.tpm ?? Number.POSITIVE_INFINITY;
}

/** Tokens of texts and token-id prompts, counted without blocking the event loop; stops once past `limit`. */
async function countPrompts(counter: TokenCounter, prompts: Array<string | number[]>, limit: number): Promise<number> {
  let total = 0;
  for (const entry of prompts) {
    if (total > limit) break;
    total += typeof entry === 'string' ? await counter.countAsync(entry, { limit: limit - total }) : entry.length;
  }
  return total;
}

export interface MeteringInputs {
  metering: Metering;
  tokenCounters: TokenCounters;
}

/** Reserves a chat request (n choices); bounds max_tokens when the key has a token limit or budget and the client set none. */
export async function reserveChat(context: Context<AppEnv>, inputs: MeteringInputs, model: ModelConfig, request: ChatCompletionRequest): Promise<void> {
  if (!principalHasLimits(context)) return;
  const counter = await inputs.tokenCounters.get(model.tokenizer);
  const limit = promptCountLimit(context);
  let prompt = await counter.countChatAsync(request.messages, request.tools, { limit });
  if (prompt <= limit && request.functions?.length) prompt += await counter.countAsync(JSON.stringify(request.functions), { limit: limit - prompt });
  let completion = request.max_completion_tokens ?? request.max_tokens ?? null;
  if (completion === null) {
    completion = defaultCompletionBound(model, prompt);
    if (needsCompletionBound(context)) request.max_tokens = completion;
  }
  await reserveRequest(context, inputs.metering, model, prompt, completion * (request.n ?? 1));
}

/** Reserves a legacy completion (every prompt × best_of or n choices of max_tokens, default 16). */
export async function reserveCompletion(context: Context<AppEnv>, inputs: MeteringInputs, model: ModelConfig, request: CompletionRequest): Promise<void> {
  if (!principalHasLimits(context)) return;
  const counter = await inputs.tokenCounters.get(model.tokenizer);
  const prompts = typeof request.prompt === 'string' ? [request.prompt] : typeof request.prompt[0] === 'number' ? [request.prompt as number[]] : (request.prompt as Array<string | number[]>);
  const prompt = await countPrompts(counter, prompts, promptCountLimit(context));
  const choices = Math.max(request.n ?? 1, request.best_of ?? 1);
  await reserveRequest(context, inputs.metering, model, prompt, (request.max_tokens ?? 16) * choices * prompts.length);
}

/** Reserves an embedding request (its input tokens). */
export async function reserveEmbedding(context: Context<AppEnv>, inputs: MeteringInputs, model: ModelConfig, inputsToEmbed: Array<string | number[]>): Promise<void> {
  if (!principalHasLimits(context)) return;
  const counter = await inputs.tokenCounters.get(model.tokenizer);
  const prompt = await countPrompts(counter, inputsToEmbed, promptCountLimit(context));
  await reserveRequest(context, inputs.metering, model, prompt, 0);
}
