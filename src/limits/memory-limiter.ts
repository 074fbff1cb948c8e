/**
 * The in-process limiter (no `redis_url`). Check-and-reserve is synchronous, so with one
 * event loop it is atomic; only the first touch of a subject's budget period awaits
 * `initialSpend` (shared by concurrent callers), before the synchronous step.
 *
 * Counters are lost on restart; budgets are re-seeded through `initialSpend`, rate-limit
 * windows start empty. Only the current window of each counter is kept per subject, so
 * memory is bounded by the number of subjects (idle subjects' ended windows are swept).
 */
import {
  admits,
  hasBudget,
  newReservation,
  refusalFor,
  stateOf,
  usageAfter,
  validateInput,
  windowsAt,
  type ActualUsage,
  type InitialSpend,
  type Limiter,
  type LimitSpec,
  type Reservation,
  type ReserveCost,
  type ReserveResult,
  type Usage,
} from './limiter.js';

interface Counter {
  /** Window start the value belongs to. */
  start: number;
  /** Exclusive end, null for `total`. */
  end: number | null;
  value: number;
}

interface SubjectCounters {
  rpm?: Counter;
  rpd?: Counter;
  tpm?: Counter;
  /** By `${period}:${start}` (a key's period may change). */
  budget: Map<string, Counter>;
}

export interface MemoryLimiterOptions {
  /** Spend already recorded when a subject's budget period is first touched (e.g. from the audit log). */
  initialSpend?: InitialSpend;
  /** Sweep ended windows every this many reserves (default 1000). */
  sweepEvery?: number;
}

export class MemoryLimiter implements Limiter {
  readonly #subjects = new Map<string, SubjectCounters>();
  readonly #seeding = new Map<string, Promise<void>>();
  readonly #initialSpend: InitialSpend | undefined;
  readonly #sweepEvery: number;
  #reserves = 0;

  constructor(options: MemoryLimiterOptions = {}) {
    this.#initialSpend = options.initialSpend;
    this.#sweepEvery = options.sweepEvery ?? 1000;
  }

  async reserve(subject: string, limits: LimitSpec, cost: ReserveCost, now: number = Date.now()): Promise<ReserveResult> {
    validateInput(limits, cost);
    const windows = windowsAt(limits, now);
    if (windows.budget && hasBudget(limits)) {
      const budgetKey = `${limits.budgetPeriod}:${windows.budget.start}`;
      if (!this.#subject(subject).budget.has(budgetKey)) {
        const pending = this.#seed(subject, budgetKey, windows.budget);
        if (pending) await pending;
      }
    }
    // From here on, synchronous: the atomic check-and-reserve.
    if (++this.#reserves % this.#sweepEvery === 0) this.sweep(now);
    const counters = this.#subject(subject);
    // A counter already in a later window (a caller's `now` older than another's) is used
    // as it is: conservative, never more than a limit admits.
    const current = (counter: Counter | undefined, start: number) => (counter && counter.start >= start ? counter.value : 0);
    let budgetCounter: Counter | undefined;
    if (windows.budget && hasBudget(limits)) {
      const budgetKey = `${limits.budgetPeriod}:${windows.budget.start}`;
      budgetCounter = counters.budget.get(budgetKey);
      if (!budgetCounter) {
        // Swept between seeding and here (only with a `now` far behind another caller's).
        budgetCounter = { start: windows.budget.start, end: windows.budget.end, value: 0 };
        counters.budget.set(budgetKey, budgetCounter);
      }
    }
    const usage: Usage = {
      rpm: limits.rpm !== undefined ? current(counters.rpm, windows.minute.start) : 0,
      rpd: limits.rpd !== undefined ? current(counters.rpd, windows.day.start) : 0,
      tpm: limits.tpm !== undefined ? current(counters.tpm, windows.minute.start) : 0,
      budget: budgetCounter?.value ?? 0,
    };
    if (!admits(limits, usage, cost, windows, now)) return refusalFor(limits, usage, cost, windows, now)!;

    const bump = (counter: Counter | undefined, start: number, end: number, amount: number): Counter => {
      if (counter && counter.start >= start) {
        counter.value += amount;
        return counter;
      }
      return { start, end, value: amount };
    };
    if (limits.rpm !== undefined) counters.rpm = bump(counters.rpm, windows.minute.start, windows.minute.end, cost.requests);
    if (limits.rpd !== undefined) counters.rpd = bump(counters.rpd, windows.day.start, windows.day.end, cost.requests);
    if (limits.tpm !== undefined) counters.tpm = bump(counters.tpm, windows.minute.start, windows.minute.end, cost.tokens);
    if (budgetCounter) budgetCounter.value += cost.micros;
    return { ok: true, reservation: newReservation(subject, limits, cost, windows, now), state: stateOf(limits, usageAfter(usage, cost), windows, now) };
  }

  async settle(reservation: Reservation, actual: ActualUsage): Promise<void> {
    if (reservation.closed) return;
    reservation.closed = true;
    this.#adjust(reservation, actual.tokens - reservation.tokens, actual.micros - reservation.micros);
  }

  async release(reservation: Reservation): Promise<void> {
    if (reservation.closed) return;
    reservation.closed = true;
    this.#adjust(reservation, -reservation.tokens, -reservation.micros);
  }

  async close(): Promise<void> {
    this.#subjects.clear();
  }

  /** Drops ended rate-limit and budget windows (called every `sweepEvery` reserves). */
  sweep(now: number = Date.now()): void {
    const ended = (counter: Counter | undefined) => counter !== undefined && counter.end !== null && counter.end <= now;
    for (const [subject, counters] of this.#subjects) {
      if (ended(counters.rpm)) delete counters.rpm;
      if (ended(counters.rpd)) delete counters.rpd;
      if (ended(counters.tpm)) delete counters.tpm;
      for (const [key, counter] of counters.budget) if (ended(counter)) counters.budget.delete(key);
      if (!counters.rpm && !counters.rpd && !counters.tpm && counters.budget.size === 0) this.#subjects.delete(subject);
    }
  }

  #adjust(reservation: Reservation, tokenDelta: number, microDelta: number): void {
    const counters = this.#subjects.get(reservation.subject);
    if (!counters) return;
    if (reservation.tokenWindowStart !== null && counters.tpm && counters.tpm.start === reservation.tokenWindowStart) {
      counters.tpm.value = Math.max(0, counters.tpm.value + Math.round(tokenDelta));
    }
    if (reservation.budgetPeriod !== null && reservation.budgetPeriodStart !== null) {
      const counter = counters.budget.get(`${reservation.budgetPeriod}:${reservation.budgetPeriodStart}`);
      if (counter) counter.value = Math.max(0, counter.value + Math.round(microDelta));
    }
  }

  #subject(subject: string): SubjectCounters {
    let counters = this.#subjects.get(subject);
    if (!counters) {
      counters = { budget: new Map() };
      this.#subjects.set(subject, counters);
    }
    return counters;
  }

  #seed(subject: string, budgetKey: string, window: { start: number; end: number | null }): Promise<void> | undefined {
    const set = (spend: number) => {
      const counters = this.#subject(subject);
      if (!counters.budget.has(budgetKey)) counters.budget.set(budgetKey, { start: window.start, end: window.end, value: Math.max(0, Math.round(spend)) });
    };
    const initialSpend = this.#initialSpend;
    if (!initialSpend) {
      set(0);
      return undefined;
    }
    const seedKey = `${subject}\u0000${budgetKey}`;
    let pending = this.#seeding.get(seedKey);
    if (!pending) {
      pending = initialSpend(subject, window.start)
        .then(set)
        .finally(() => this.#seeding.delete(seedKey));
      this.#seeding.set(seedKey, pending);
    }
    return pending;
  }
}
