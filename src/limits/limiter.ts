/**
 * The limiter port: check-and-reserve of all of a subject's counters (requests per minute
 * and per day, tokens per minute, spend per budget period) in one atomic step, settled
 * with the real usage once the request has ended.
 *
 * Semantics (shared by MemoryLimiter and RedisLimiter):
 * - Windows are fixed and aligned to UTC: rpm/tpm count in the current UTC minute, rpd in
 *   the current UTC day, the budget in its period (see windows.ts). A request is counted in
 *   the windows of the `now` it was reserved at, and settled in those same windows.
 * - A limit that is absent is not checked and its counter is not kept. A limit of 0
 *   allows nothing.
 * - `reserve` admits a request only when, for every present limit, used + cost <= limit;
 *   then it adds the cost to every counter. Otherwise nothing is added.
 * - `settle` adds (actual − reserved) to the tokens and budget counters of the windows the
 *   reservation was made in (a counter never goes below 0). Usage larger than reserved is
 *   counted in full even when it passes the limit: the next requests then wait.
 *   When a window has already ended the adjustment is dropped (it can no longer matter).
 * - `release` is for a request that failed before it ran: its reserved tokens and cost
 *   are given back, but the request itself stays counted against rpm/rpd (as OpenAI
 *   counts every request it receives, and so that a client cannot hammer failing requests
 *   past its request limits).
 * - `settle` and `release` act once per reservation; later calls are no-ops.
 * - Budgets are in integer micro-USD (1e-6 USD), tokens in integer tokens.
 */
import type { ApiKeySettings } from '../storage/spec.js';
import { budgetWindow, dayWindow, minuteWindow, type BudgetPeriod } from './windows.js';

export type { BudgetPeriod } from './windows.js';

export interface LimitSpec {
  rpm?: number;
  rpd?: number;
  tpm?: number;
  /** Budget in micro-USD per `budgetPeriod` (both or neither). */
  budgetMicros?: number;
  budgetPeriod?: BudgetPeriod;
}

export interface ReserveCost {
  /** 1 for a request. */
  requests: number;
  /** The worst case: estimated prompt tokens + max completion tokens. */
  tokens: number;
  /** The worst case cost in micro-USD (0 when the model has no price). */
  micros: number;
}

export interface ActualUsage {
  /** Prompt + completion tokens actually used. */
  tokens: number;
  /** Actual cost in micro-USD (0 when unknown). */
  micros: number;
}

/** What the `x-ratelimit-*` headers need (and the budget, for whoever wants it). */
export interface RateLimitState {
  /** The rpm window, or the rpd window when there is no rpm limit. */
  requests?: { limit: number; remaining: number; resetMs: number; window: 'minute' | 'day' };
  tokens?: { limit: number; remaining: number; resetMs: number };
  /** `resetMs` null for the `total` period. */
  budget?: { limitMicros: number; remainingMicros: number; period: BudgetPeriod; resetMs: number | null };
}

/** A plain object; safe to keep until the request ends (and to log). */
export interface Reservation {
  readonly subject: string;
  /** The `now` the reservation was made at. */
  readonly at: number;
  /** Tokens reserved in the tpm window starting at `tokenWindowStart` (null: no tpm limit). */
  readonly tokens: number;
  readonly tokenWindowStart: number | null;
  /** Micro-USD reserved in the budget period (null: no budget). */
  readonly micros: number;
  readonly budgetPeriod: BudgetPeriod | null;
  readonly budgetPeriodStart: number | null;
  /** Set once settled or released. */
  closed: boolean;
}

export type RefusalReason = 'requests' | 'tokens' | 'budget';

export interface Admitted {
  ok: true;
  reservation: Reservation;
  state: RateLimitState;
}

export interface Refused {
  ok: false;
  reason: RefusalReason;
  /** Which counter refused: `minute`/`day` for requests, `minute` for tokens, the period for budgets. */
  window: 'minute' | 'day' | BudgetPeriod;
  limit: number;
  /** Counted in the window before this request. */
  used: number;
  /** What this request asked for. */
  requested: number;
  /**
   * When to try again (all refusing counters will have reset), in ms; null when waiting
   * cannot help: the request alone exceeds a limit (`requested > limit`), or a `total`
   * budget is used up.
   */
  retryAfterMs: number | null;
  /** True when `requested > limit`: this request can never pass. */
  tooLarge: boolean;
  state: RateLimitState;
}

export type ReserveResult = Admitted | Refused;

/** Spend already recorded for a subject in the budget period starting at `periodStart` (micro-USD). */
export type InitialSpend = (subject: string, periodStart: number) => Promise<number>;

export interface Limiter {
  reserve(subject: string, limits: LimitSpec, cost: ReserveCost, now?: number): Promise<ReserveResult>;
  settle(reservation: Reservation, actual: ActualUsage): Promise<void>;
  release(reservation: Reservation): Promise<void>;
  close(): Promise<void>;
}

/** The limits of an API key's settings; USD budgets become micro-USD (rounded to the nearest). */
export function limitsFromSettings(settings: Pick<ApiKeySettings, 'limits' | 'budget'>): LimitSpec {
  const spec: LimitSpec = {};
  if (settings.limits.rpm !== undefined) spec.rpm = settings.limits.rpm;
  if (settings.limits.rpd !== undefined) spec.rpd = settings.limits.rpd;
  if (settings.limits.tpm !== undefined) spec.tpm = settings.limits.tpm;
  if (settings.budget) {
    spec.budgetMicros = Math.round(settings.budget.usd * 1_000_000);
    spec.budgetPeriod = settings.budget.period;
  }
  return spec;
}

/** Counter values before the request (0 for absent limits). */
export interface Usage {
  rpm: number;
  rpd: number;
  tpm: number;
  budget: number;
}

/** The windows a reservation at `now` uses. */
export interface Windows {
  minute: { start: number; end: number };
  day: { start: number; end: number };
  budget: { start: number; end: number | null } | null;
}

export function hasBudget(limits: LimitSpec): limits is LimitSpec & { budgetMicros: number; budgetPeriod: BudgetPeriod } {
  return limits.budgetMicros !== undefined && limits.budgetPeriod !== undefined;
}

export function windowsAt(limits: LimitSpec, now: number): Windows {
  return {
    minute: minuteWindow(now),
    day: dayWindow(now),
    budget: hasBudget(limits) ? budgetWindow(limits.budgetPeriod, now) : null,
  };
}

export function validateInput(limits: LimitSpec, cost: ReserveCost): void {
  for (const [name, value] of Object.entries({ ...limits, requests: cost.requests, tokens: cost.tokens, micros: cost.micros })) {
    if (name === 'budgetPeriod') continue;
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 0)) {
      throw new RangeError(`limiter: ${name} must be a non-negative integer, got ${String(value)}`);
    }
  }
  if ((limits.budgetMicros === undefined) !== (limits.budgetPeriod === undefined)) {
    throw new RangeError('limiter: budgetMicros and budgetPeriod go together');
  }
}

/** The state after `usage` (the counters as they now stand). */
export function stateOf(limits: LimitSpec, usage: Usage, windows: Windows, now: number): RateLimitState {
  const state: RateLimitState = {};
  if (limits.rpm !== undefined) {
    state.requests = { limit: limits.rpm, remaining: Math.max(0, limits.rpm - usage.rpm), resetMs: windows.minute.end - now, window: 'minute' };
  } else if (limits.rpd !== undefined) {
    state.requests = { limit: limits.rpd, remaining: Math.max(0, limits.rpd - usage.rpd), resetMs: windows.day.end - now, window: 'day' };
  }
  if (limits.tpm !== undefined) {
    state.tokens = { limit: limits.tpm, remaining: Math.max(0, limits.tpm - usage.tpm), resetMs: windows.minute.end - now };
  }
  if (hasBudget(limits) && windows.budget) {
    state.budget = {
      limitMicros: limits.budgetMicros,
      remainingMicros: Math.max(0, limits.budgetMicros - usage.budget),
      period: limits.budgetPeriod,
      resetMs: windows.budget.end === null ? null : windows.budget.end - now,
    };
  }
  return state;
}

interface Check {
  reason: RefusalReason;
  window: Refused['window'];
  limit: number;
  used: number;
  requested: number;
  resetMs: number | null;
}

/** Every present limit that `cost` would pass, in the order requests/minute, requests/day, tokens, budget. */
function failingChecks(limits: LimitSpec, usage: Usage, cost: ReserveCost, windows: Windows, now: number): Check[] {
  const failing: Check[] = [];
  const check = (limit: number | undefined, used: number, requested: number, rest: Omit<Check, 'limit' | 'used' | 'requested'>) => {
    if (limit !== undefined && used + requested > limit) failing.push({ ...rest, limit, used, requested });
  };
  check(limits.rpm, usage.rpm, cost.requests, { reason: 'requests', window: 'minute', resetMs: windows.minute.end - now });
  check(limits.rpd, usage.rpd, cost.requests, { reason: 'requests', window: 'day', resetMs: windows.day.end - now });
  check(limits.tpm, usage.tpm, cost.tokens, { reason: 'tokens', window: 'minute', resetMs: windows.minute.end - now });
  if (hasBudget(limits) && windows.budget) {
    check(limits.budgetMicros, usage.budget, cost.micros, {
      reason: 'budget',
      window: limits.budgetPeriod,
      resetMs: windows.budget.end === null ? null : windows.budget.end - now,
    });
  }
  return failing;
}

/** Whether every present limit admits `cost` given `usage` (the check the Redis script repeats). */
export function admits(limits: LimitSpec, usage: Usage, cost: ReserveCost, windows: Windows, now: number): boolean {
  return failingChecks(limits, usage, cost, windows, now).length === 0;
}

/**
 * The refusal for `usage` (counters before the request), or null when admitted.
 * When several limits refuse: one the request alone exceeds wins (waiting cannot help);
 * otherwise the one that resets last (the binding one), and `retryAfterMs` is its reset.
 */
export function refusalFor(limits: LimitSpec, usage: Usage, cost: ReserveCost, windows: Windows, now: number): Refused | null {
  const failing = failingChecks(limits, usage, cost, windows, now);
  if (failing.length === 0) return null;
  const tooLarge = failing.find((check) => check.requested > check.limit);
  let chosen: Check;
  if (tooLarge) chosen = tooLarge;
  else {
    chosen = failing.reduce((a, b) => (b.resetMs === null || (a.resetMs !== null && b.resetMs > a.resetMs) ? b : a));
  }
  return {
    ok: false,
    reason: chosen.reason,
    window: chosen.window,
    limit: chosen.limit,
    used: chosen.used,
    requested: chosen.requested,
    retryAfterMs: tooLarge ? null : chosen.resetMs,
    tooLarge: tooLarge !== undefined,
    state: stateOf(limits, usage, windows, now),
  };
}

export function newReservation(subject: string, limits: LimitSpec, cost: ReserveCost, windows: Windows, now: number): Reservation {
  return {
    subject,
    at: now,
    tokens: limits.tpm !== undefined ? cost.tokens : 0,
    tokenWindowStart: limits.tpm !== undefined ? windows.minute.start : null,
    micros: windows.budget ? cost.micros : 0,
    budgetPeriod: windows.budget && limits.budgetPeriod ? limits.budgetPeriod : null,
    budgetPeriodStart: windows.budget ? windows.budget.start : null,
    closed: false,
  };
}

export function usageAfter(usage: Usage, cost: ReserveCost): Usage {
  return { rpm: usage.rpm + cost.requests, rpd: usage.rpd + cost.requests, tpm: usage.tpm + cost.tokens, budget: usage.budget + cost.micros };
}
