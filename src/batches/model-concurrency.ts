/**
 * How many batch requests run at once in this process: at most `limitOf(model)` per model and
 * `total` over all models and batches. Live traffic never waits here: it shares the model only
 * with the batch requests admitted by these limits, so an operator keeps capacity for it by
 * setting `batch_concurrency` below what the model can serve (docs/batches.md). Waiters are
 * served first come, first served; an aborted waiter leaves the queue.
 */
interface Waiter {
  model: string;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class ModelConcurrency {
  private readonly running = new Map<string, number>();
  private runningTotal = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly total: number,
    private readonly limitOf: (model: string) => number,
  ) {}

  /** Requests running now (all models, or one). */
  active(model?: string): number {
    return model === undefined ? this.runningTotal : (this.running.get(model) ?? 0);
  }

  private canRun(model: string): boolean {
    return this.runningTotal < this.total && (this.running.get(model) ?? 0) < Math.max(1, this.limitOf(model));
  }

  private take(model: string): void {
    this.running.set(model, (this.running.get(model) ?? 0) + 1);
    this.runningTotal++;
  }

  /** Waits for a slot for `model`; call the returned function once when the request is done. */
  async acquire(model: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    // Waiters for other models are waiting for their own model's slot, not for this one.
    if (this.canRun(model) && !this.waiters.some((waiter) => waiter.model === model)) {
      this.take(model);
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          model,
          resolve,
          reject,
          signal,
          onAbort: () => {
            const index = this.waiters.indexOf(waiter);
            if (index >= 0) this.waiters.splice(index, 1);
            reject(signal?.reason);
          },
        };
        signal?.addEventListener('abort', waiter.onAbort, { once: true });
        this.waiters.push(waiter);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running.set(model, (this.running.get(model) ?? 1) - 1);
      this.runningTotal--;
      this.dispatch();
    };
  }

  /** Starts the first waiters that fit (a waiter for a busy model does not block others). */
  private dispatch(): void {
    for (let index = 0; index < this.waiters.length && this.runningTotal < this.total; ) {
      const waiter = this.waiters[index]!;
      if (!this.canRun(waiter.model)) {
        index++;
        continue;
      }
      this.waiters.splice(index, 1);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.take(waiter.model);
      waiter.resolve();
    }
  }
}
