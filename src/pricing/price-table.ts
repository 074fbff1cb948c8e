/**
 * Model prices in USD per million tokens, and the cost of a request in integer micro-USD.
 *
 * Built-in prices are OpenAI's published list prices (standard tier, per 1M tokens, from
 * https://openai.com/api/pricing/ and the model pages at https://platform.openai.com/docs/models):
 *   gpt-4.1       input $2.00,  cached input $0.50,  output $8.00
 *   gpt-4.1-mini  input $0.40,  cached input $0.10,  output $1.60
 *   gpt-4.1-nano  input $0.10,  cached input $0.025, output $0.40
 *   gpt-4o        input $2.50,  cached input $1.25,  output $10.00
 *   gpt-4o-mini   input $0.15,  cached input $0.075, output $0.60
 *   gpt-4-turbo   input $10.00, output $30.00 (no cached-input discount)
 * The built-in names cost what the OpenAI model that serves them costs (config/defaults.ts):
 * `gpt-4-2026` and `gpt-4-vision` → gpt-4.1, `gpt-4-turbo` → gpt-4-turbo, `gpt-4-32k` →
 * gpt-4.1-mini; this also holds when the mock serves them, so budgets can be tried offline.
 * The config's `prices` replace (per model) and add to these; `cached_input` defaults to
 * `input`.
 *
 * A model without a price has a null cost: it is free as far as budgets go (the audit log
 * records a null cost). Set a price in `prices` to budget it.
 *
 * USD per 1M tokens is numerically micro-USD per token; the arithmetic is exact (BigInt
 * over prices scaled by 1e6) and the total is rounded up to a whole micro-USD.
 */
import type { ModelPrice } from '../config/schema.js';

export interface TokenPrice {
  /** USD per 1M prompt tokens. */
  input: number;
  /** USD per 1M completion tokens. */
  output: number;
  /** USD per 1M prompt tokens served from a cache. */
  cachedInput: number;
}

export interface TokenUsage {
  /** All prompt tokens, cached ones included (as OpenAI's `usage.prompt_tokens`). */
  promptTokens: number;
  completionTokens: number;
  /** The cached part of `promptTokens` (`usage.prompt_tokens_details.cached_tokens`). */
  cachedTokens?: number;
}

const GPT_4_1: TokenPrice = { input: 2, output: 8, cachedInput: 0.5 };
const GPT_4_1_MINI: TokenPrice = { input: 0.4, output: 1.6, cachedInput: 0.1 };
const GPT_4_1_NANO: TokenPrice = { input: 0.1, output: 0.4, cachedInput: 0.025 };
const GPT_4O: TokenPrice = { input: 2.5, output: 10, cachedInput: 1.25 };
const GPT_4O_MINI: TokenPrice = { input: 0.15, output: 0.6, cachedInput: 0.075 };
const GPT_4_TURBO: TokenPrice = { input: 10, output: 30, cachedInput: 10 };

export const BUILT_IN_PRICES: Readonly<Record<string, TokenPrice>> = Object.freeze({
  // Chatgate's built-in names:
  'gpt-4-2026': GPT_4_1,
  'gpt-4-turbo': GPT_4_TURBO,
  'gpt-4-vision': GPT_4_1,
  'gpt-4-32k': GPT_4_1_MINI,
  // The OpenAI models behind them, and close relatives:
  'gpt-4.1': GPT_4_1,
  'gpt-4.1-2025-04-14': GPT_4_1,
  'gpt-4.1-mini': GPT_4_1_MINI,
  'gpt-4.1-mini-2025-04-14': GPT_4_1_MINI,
  'gpt-4.1-nano': GPT_4_1_NANO,
  'gpt-4.1-nano-2025-04-14': GPT_4_1_NANO,
  'gpt-4-turbo-2024-04-09': GPT_4_TURBO,
  'gpt-4o': GPT_4O,
  'gpt-4o-mini': GPT_4O_MINI,
});

const SCALE = 1_000_000n;

/** A price as an integer number of 1e-6 micro-USD per token (exact for up to 6 decimals of USD/1M). */
function scaled(usdPerMillion: number): bigint {
  return BigInt(Math.round(usdPerMillion * 1_000_000));
}

function tokens(value: number, name: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`pricing: ${name} must be a non-negative integer, got ${value}`);
  return BigInt(value);
}

function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

export class PriceTable {
  readonly #prices: Map<string, TokenPrice>;

  /** `overrides`: the config's `prices` (USD per 1M tokens by model name). */
  constructor(overrides: Readonly<Record<string, ModelPrice>> = {}, builtIn: Readonly<Record<string, TokenPrice>> = BUILT_IN_PRICES) {
    this.#prices = new Map(Object.entries(builtIn));
    for (const [model, price] of Object.entries(overrides)) {
      this.#prices.set(model, { input: price.input, output: price.output, cachedInput: price.cached_input ?? price.input });
    }
  }

  /** The price of a model name, or null when it has none. */
  priceOf(model: string): TokenPrice | null {
    return this.#prices.get(model) ?? null;
  }

  /**
   * The cost of a finished request in micro-USD, rounded up; null without a price.
   * Cached prompt tokens cost the cached-input price, the other prompt tokens the input price.
   */
  costMicros(model: string, usage: TokenUsage): number | null {
    const price = this.priceOf(model);
    if (!price) return null;
    const prompt = tokens(usage.promptTokens, 'promptTokens');
    const completion = tokens(usage.completionTokens, 'completionTokens');
    let cached = tokens(usage.cachedTokens ?? 0, 'cachedTokens');
    if (cached > prompt) cached = prompt;
    const total = (prompt - cached) * scaled(price.input) + cached * scaled(price.cachedInput) + completion * scaled(price.output);
    return Number(ceilDiv(total, SCALE));
  }

  /** The most a request can cost: every prompt token at the input price plus `maxTokens` completion tokens. */
  worstCaseMicros(model: string, promptTokens: number, maxTokens: number): number | null {
    return this.costMicros(model, { promptTokens, completionTokens: maxTokens });
  }
}

export function createPriceTable(prices: Readonly<Record<string, ModelPrice>> = {}): PriceTable {
  return new PriceTable(prices);
}
