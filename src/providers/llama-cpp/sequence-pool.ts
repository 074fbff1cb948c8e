/**
 * A fixed set of items (a context's sequences) lent to one request at a time. When none is
 * free, callers wait in a bounded FIFO queue for a bounded time; beyond either bound they
 * get 429 `model_overloaded` with a `retry-after` estimated from how long items are held.
 * A waiter whose request is aborted leaves the queue at once.
 */
import { GatewayError } from '../../errors/gateway-error.js';

export interface SequencePoolLimits {
  /** Requests that may wait for an item. */
  maxWaiting: number;
  /** How long one may wait, in milliseconds (0: no limit). */
  maxWaitMs: number;
}

interface Waiter<T> {
  resolve(item: T): void;
  reject(reason: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
  timer?: NodeJS.Timeout;
}

export class SequencePool<T> {
  private readonly free: T[];
  private readonly size: number;
  private readonly waiters: Array<Waiter<T>> = [];
  private readonly lentAt = new Map<T, number>();
  /** Moving average of how long an item is held, in ms. */
  private averageHoldMs = 1000;

  constructor(
    items: T[],
    private readonly limits: SequencePoolLimits,
    private readonly describe: string,
  ) {
    this.free = [...items];
    this.size = items.length;
  }

  /** Requests holding an item or waiting for one. */
  get inUse(): number {
    return this.size - this.free.length + this.waiters.length;
  }

  /** Seconds until a place is likely free, for `retry-after`. */
  private retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(((this.waiters.length + 1) * this.averageHoldMs) / this.size / 1000));
  }

  private overloaded(reason: string): GatewayError {
    return new GatewayError({
      status: 429,
      type: 'server_error',
      code: 'model_overloaded',
      source: 'upstream',
      headers: { 'retry-after': String(this.retryAfterSeconds()) },
      message: `The model '${this.describe}' is overloaded: all its ${this.size} sequences are busy and ${reason}. Retry later.`,
    });
  }

  private lend(item: T): T {
    this.lentAt.set(item, performance.now());
    return item;
  }

  acquire(signal: AbortSignal): Promise<T> {
    signal.throwIfAborted();
    const item = this.free.shift();
    if (item !== undefined) return Promise.resolve(this.lend(item));
    if (this.waiters.length >= this.limits.maxWaiting) {
      return Promise.reject(this.overloaded(`${this.limits.maxWaiting} requests are already waiting`));
    }
    return new Promise<T>((resolve, reject) => {
      const leave = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        clearTimeout(waiter.timer);
        signal.removeEventListener('abort', waiter.onAbort);
      };
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          leave();
          reject(signal.reason);
        },
      };
      if (this.limits.maxWaitMs > 0) {
        waiter.timer = setTimeout(() => {
          leave();
          reject(this.overloaded(`this request waited ${Math.round(this.limits.maxWaitMs / 1000)} s in the queue`));
        }, this.limits.maxWaitMs);
        waiter.timer.unref();
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Returns an item: the longest waiter gets it, else it becomes free. */
  release(item: T): void {
    const since = this.lentAt.get(item);
    if (since !== undefined) this.averageHoldMs = 0.8 * this.averageHoldMs + 0.2 * (performance.now() - since);
    this.lentAt.delete(item);
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.lend(item));
    } else {
      this.free.push(item);
    }
  }

  /** Fails every waiter (the model is being unloaded or closed). */
  rejectWaiting(reason: unknown): void {
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }
}
