/**
 * The optional queue (`queueSeconds`): instead of refusing at once, try again when the
 * refusing window resets, until a deadline.
 */
import { abortableDelay as abortableSleep } from '../util/abortable-delay.js';
import type { Limiter, LimitSpec, ReserveCost, ReserveResult } from './limiter.js';

export interface ReserveWithinOptions {
  /** Longest total wait; 0 reserves once. */
  maxWaitMs: number;
  /** Aborting (client gone) rejects with `signal.reason`; nothing stays reserved. */
  signal?: AbortSignal;
  /** Random extra delay up to this many ms per retry, so waiters don't all wake at once (default 50). */
  jitterMs?: number;
  /** Clock (tests); default Date.now. */
  clock?: () => number;
  /** Sleep (tests); default an abortable setTimeout. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Reserves, retrying at each refusal's `retryAfterMs` (plus jitter) while the retry falls
 * before the deadline. Returns the admission, or the last refusal: at once when waiting
 * cannot help (`retryAfterMs` null) or when the window resets after the deadline (so a
 * budget that resets next month is refused without waiting).
 */
export async function reserveWithin(
  limiter: Limiter,
  subject: string,
  limits: LimitSpec,
  cost: ReserveCost,
  options: ReserveWithinOptions,
): Promise<ReserveResult> {
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const jitter = options.jitterMs ?? 50;
  const { signal } = options;
  const deadline = clock() + Math.max(0, options.maxWaitMs);
  for (;;) {
    signal?.throwIfAborted();
    const now = clock();
    const result = await limiter.reserve(subject, limits, cost, now);
    if (result.ok) {
      if (signal?.aborted) {
        await limiter.release(result.reservation);
        signal.throwIfAborted();
      }
      return result;
    }
    if (result.retryAfterMs === null) return result;
    const delay = result.retryAfterMs + Math.floor(Math.random() * (jitter + 1));
    if (now + delay > deadline) return result;
    await sleep(delay, signal);
  }
}

export { abortableSleep };
