/**
 * What metering a request needs: the limiter that holds the keys' counters and the price
 * table, whether a key's limits limit anything, the cost of a request, and the completion
 * bound imposed when the client sets no max_tokens.
 */
import type { ModelConfig } from '../config/schema.js';
import type { Usage } from '../openai/completion-objects.js';
import type { PriceTable } from '../pricing/price-table.js';
import type { LimitSpec, Limiter } from './limiter.js';

export interface Metering {
  limiter: Limiter;
  prices: PriceTable;
}

export function hasLimits(limits: LimitSpec): boolean {
  return limits.rpm !== undefined || limits.rpd !== undefined || limits.tpm !== undefined || limits.budgetMicros !== undefined;
}

/** The completion bound to impose when the client set none: the model's output cap, else the rest of the window. */
export function defaultCompletionBound(model: ModelConfig, promptTokens: number): number {
  return Math.max(1, Math.min(model.max_output_tokens ?? Number.POSITIVE_INFINITY, model.context_window - promptTokens));
}

/** The request's cost in micro-USD (null: the model has no price). */
export function costOf(metering: Metering, modelName: string | undefined, usage: Usage | null | undefined): number | null {
  if (!modelName || !usage) return null;
  return metering.prices.costMicros(modelName, {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens ?? 0,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
  });
}
