/**
 * A fixed set of items (a context's sequences) lent to one request at a time. When none is
 * free, callers wait in a bounded FIFO queue; a waiter whose request is aborted leaves it.
 */
import { GatewayError } from '../../errors/gateway-error.js';

interface Waiter<T> {
  resolve(item: T): void;
  reject(reason: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
}

export class SequencePool<T> {
  private readonly free: T[];
  private readonly size: number;
  private readonly waiters: Array<Waiter<T>> = [];

  constructor(
    items: T[],
    private readonly maxWaiting: number,
    private readonly describe: string,
  ) {
    this.free = [...items];
    this.size = items.length;
  }

  /** Requests holding an item or waiting for one. */
  get inUse(): number {
    return this.size - this.free.length + this.waiters.length;
  }

  acquire(signal: AbortSignal): Promise<T> {
    signal.throwIfAborted();
    const item = this.free.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.waiters.length >= this.maxWaiting) {
      return Promise.reject(
        new GatewayError({
          status: 503,
          type: 'server_error',
          code: 'model_overloaded',
          source: 'upstream',
          headers: { 'retry-after': '1' },
          message: `The model '${this.describe}' is busy: all its sequences are in use and ${this.maxWaiting} requests are already waiting. Retry later.`,
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Returns an item: the longest waiter gets it, else it becomes free. */
  release(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(item);
    } else {
      this.free.push(item);
    }
  }

  /** Fails every waiter (the model is being unloaded or closed). */
  rejectWaiting(reason: unknown): void {
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }
}
