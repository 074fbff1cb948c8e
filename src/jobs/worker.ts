/**
 * The worker loop over the durable job queue (docs/architecture.md, "Jobs"). It polls the
 * queue (with backoff while idle), runs each claimed job's handler by kind with a
 * concurrency limit, renews the job's lease while the handler runs, and stops gracefully:
 * running handlers get `stopGraceMs` to finish, then are aborted and their jobs (and item
 * leases) released for another worker. A worker that dies (SIGKILL) stops renewing; once its
 * leases expire another worker claims the job again and continues with the items that have
 * no outcome yet (`processItems`).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Job, JobItem, JobQueue } from '../storage/job-records.js';

export interface ProcessItemsOptions {
  /** Items run at once by this worker for this job. Default 4. */
  concurrency?: number;
  /** Item lease; renewed every third of it while the item runs. Default: the worker's lease. */
  leaseMs?: number;
  /** Wait between looks while other workers hold the remaining items. Default 200 ms. */
  pollMs?: number;
  /**
   * Checked before each claim: once true, no more items are claimed; the items in flight
   * finish (their outcomes are recorded) and processItems returns. The rest stay pending.
   */
  shouldStop?: () => boolean;
}

/** Thrown by an item's run that did not start its work (it was told to stop first): the item goes back to pending. */
export class ItemDeferred extends Error {
  constructor(message = 'Deferred') {
    super(message);
    this.name = 'ItemDeferred';
  }
}

/** Thrown by an item's run to record a failure together with a result (what the failure produced). */
export class ItemFailure extends Error {
  constructor(
    message: string,
    readonly result: unknown,
  ) {
    super(message);
    this.name = 'ItemFailure';
  }
}

export interface JobContext {
  readonly workerId: string;
  readonly queue: JobQueue;
  /** Aborted when the worker stops (after the grace period) or loses the job (cancelled, lease taken). */
  readonly signal: AbortSignal;
  /**
   * Runs `run` for each item of the job without an outcome, leasing them to this worker, and
   * records each outcome once (`completeItem`; a throw becomes `failItem`). Returns when every
   * item has an outcome (or `shouldStop` said so), or (rejecting with the abort reason) when the
   * signal fires: the items in flight are then released. A run that throws `ItemFailure` records
   * a failure with its result.
   */
  processItems(run: (item: JobItem, signal: AbortSignal) => Promise<unknown>, options?: ProcessItemsOptions): Promise<void>;
}

/** Returns the job's result (stored as JSON); a throw is a failed attempt (retried with backoff). */
export type JobHandler = (job: Job, context: JobContext) => Promise<unknown>;

export interface WorkerOptions {
  queue: JobQueue;
  handlers: Record<string, JobHandler>;
  /** Default: host, pid and a random suffix. */
  id?: string;
  /** Jobs run at once. Default 2. */
  concurrency?: number;
  /** Job lease, renewed every third of it. Default 30 s. */
  leaseMs?: number;
  /** Idle polling: starts at min, doubles up to max. Defaults 100 ms and 2 s. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** How long stop() lets running jobs finish before aborting them. Default 10 s. */
  stopGraceMs?: number;
  /** Told about errors of the loop itself (database unreachable, …); the loop carries on. */
  onError?: (error: unknown) => void;
}

export class JobAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobAbortedError';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error)) || 'failed';

export class Worker {
  readonly id: string;
  private readonly queue: JobQueue;
  private readonly handlers: Record<string, JobHandler>;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;
  private readonly stopGraceMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly active = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  private wake = new AbortController();
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(options: WorkerOptions) {
    this.queue = options.queue;
    this.handlers = { ...options.handlers };
    this.id = options.id ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.concurrency = options.concurrency ?? 2;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollMinMs = options.pollMinMs ?? 100;
    this.pollMaxMs = options.pollMaxMs ?? 2_000;
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
    this.onError = options.onError ?? (() => undefined);
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    if (!Number.isInteger(this.leaseMs) || this.leaseMs < 3) throw new RangeError('leaseMs must be an integer of at least 3');
  }

  /** Starts polling; idempotent. */
  start(): void {
    if (this.loop !== undefined || this.stopping) return;
    this.loop = this.run();
  }

  /** Looks at the queue now instead of at the next poll (new work was enqueued by this process). */
  poke(): void {
    if (!this.stopping) this.wake.abort();
  }

  /** Jobs running now. */
  get running(): number {
    return this.active.size;
  }

  /**
   * Stops claiming, lets running jobs finish for up to `graceMs`, then aborts them (their
   * jobs and items are released). Resolves when nothing runs any more.
   */
  async stop(graceMs = this.stopGraceMs): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    await this.loop;
    const all = Promise.all([...this.active.values()].map((entry) => entry.promise));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      for (const entry of this.active.values()) entry.abort.abort(new JobAbortedError('The worker is stopping'));
      await all;
    }
  }

  private async run(): Promise<void> {
    const kinds = Object.keys(this.handlers);
    let idleMs = this.pollMinMs;
    while (!this.stopping) {
      const free = this.concurrency - this.active.size;
      let claimed: Job[] = [];
      if (free > 0) {
        try {
          claimed = await this.queue.claim(this.id, kinds, this.leaseMs, free);
        } catch (error) {
          this.onError(error);
        }
      }
      for (const job of claimed) this.startJob(job);
      if (claimed.length > 0 && this.active.size < this.concurrency) {
        idleMs = this.pollMinMs;
        continue;
      }
      if (this.stopping) break;
      // Sleep until the next poll, a free slot (a job finished) or stop().
      await sleep(claimed.length > 0 ? this.pollMaxMs : idleMs, this.wake.signal);
      if (this.wake.signal.aborted && !this.stopping) this.wake = new AbortController();
      idleMs = claimed.length > 0 ? this.pollMinMs : Math.min(this.pollMaxMs, idleMs * 2);
    }
  }

  private startJob(job: Job): void {
    const abort = new AbortController();
    const promise = this.runJob(job, abort).finally(() => {
      this.active.delete(job.id);
      if (!this.stopping) this.wake.abort();
    });
    this.active.set(job.id, { promise, abort });
  }

  private async runJob(job: Job, abort: AbortController): Promise<void> {
    const handler = this.handlers[job.kind];
    const heartbeat = setInterval(() => {
      this.queue.heartbeat(job.id, this.id, this.leaseMs).then(
        (held) => {
          if (!held) abort.abort(new JobAbortedError(`Job ${job.id} is no longer held by this worker (cancelled or taken over)`));
        },
        (error: unknown) => this.onError(error),
      );
    }, Math.max(1, Math.floor(this.leaseMs / 3)));
    try {
      if (handler === undefined) throw new Error(`No handler for job kind ${job.kind}`);
      const context: JobContext = {
        workerId: this.id,
        queue: this.queue,
        signal: abort.signal,
        processItems: (runItem, options) => this.processItems(job, abort.signal, runItem, options),
      };
      const result = await handler(job, context);
      if (abort.signal.aborted) throw abort.signal.reason;
      await this.queue.complete(job.id, this.id, result ?? null);
    } catch (error) {
      try {
        if (abort.signal.aborted) await this.queue.release(job.id, this.id);
        else await this.queue.fail(job.id, this.id, message(error));
      } catch (storeError) {
        this.onError(storeError);
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * processItems for a job this worker does not hold (helping the holder with a big job): the
   * items are leased one by one, so any number of workers can share one job's items. Used by
   * the batch worker to spread one batch over several Chatgate processes.
   */
  assist(job: Job, signal: AbortSignal, runItem: (item: JobItem, signal: AbortSignal) => Promise<unknown>, options?: ProcessItemsOptions): Promise<void> {
    return this.processItems(job, signal, runItem, options);
  }

  private async processItems(
    job: Job,
    signal: AbortSignal,
    runItem: (item: JobItem, signal: AbortSignal) => Promise<unknown>,
    options: ProcessItemsOptions = {},
  ): Promise<void> {
    const concurrency = options.concurrency ?? 4;
    const leaseMs = options.leaseMs ?? this.leaseMs;
    const pollMs = options.pollMs ?? 200;
    const shouldStop = options.shouldStop ?? (() => false);
    const claimAtLeast = Math.min(8, Math.ceil(concurrency / 4));
    const inFlight = new Map<string, Promise<void>>();
    /** Per item: aborted when its lease is lost (it expired and another worker took the item). */
    const itemAborts = new Map<string, AbortController>();
    const slotFreed = (): Promise<void> => Promise.race(inFlight.values());
    const renew = setInterval(() => {
      if (inFlight.size === 0) return;
      const keys = [...inFlight.keys()];
      this.queue.extendItems(job.id, this.id, keys, leaseMs).then((held) => {
        const kept = new Set(held);
        for (const key of keys) {
          if (!kept.has(key)) itemAborts.get(key)?.abort(new JobAbortedError(`Item ${key} of job ${job.id} is no longer leased to this worker`));
        }
      }, (error: unknown) => this.onError(error));
    }, Math.max(1, Math.floor(leaseMs / 3)));
    try {
      while (!signal.aborted) {
        if (shouldStop()) {
          await Promise.all(inFlight.values());
          return;
        }
        const free = concurrency - inFlight.size;
        // With many items in flight, claim a few at a time rather than one per finished item
        // (a claim is a write transaction).
        if (inFlight.size > 0 && free < claimAtLeast) {
          await slotFreed();
          continue;
        }
        const items = free > 0 ? await this.queue.claimItems(job.id, this.id, free, leaseMs) : [];
        for (const item of items) {
          const itemAbort = new AbortController();
          itemAborts.set(item.itemKey, itemAbort);
          const run = (async () => {
            try {
              const result = await runItem(item, AbortSignal.any([signal, itemAbort.signal]));
              // completeItem records the first outcome only: a late duplicate is a no-op.
              await this.queue.completeItem(job.id, item.itemKey, result ?? null);
            } catch (error) {
              if (itemAbort.signal.aborted) return; // another worker holds the item now
              if (signal.aborted || error instanceof ItemDeferred) await this.queue.releaseItems(job.id, this.id, [item.itemKey]);
              else await this.queue.failItem(job.id, item.itemKey, message(error), error instanceof ItemFailure ? error.result : undefined);
            }
          })()
            .catch((error: unknown) => this.onError(error))
            .finally(() => {
              inFlight.delete(item.itemKey);
              itemAborts.delete(item.itemKey);
            });
          inFlight.set(item.itemKey, run);
        }
        if (items.length > 0) continue;
        if (inFlight.size > 0) {
          await slotFreed();
          continue;
        }
        const counts = await this.queue.itemCounts(job.id);
        if (counts.pending + counts.running === 0) return;
        // Other workers hold the rest: wait for them to finish, or for their leases to expire.
        await sleep(pollMs, signal);
      }
      await Promise.all(inFlight.values());
      throw signal.reason instanceof Error ? signal.reason : new JobAbortedError('Aborted');
    } finally {
      clearInterval(renew);
      await Promise.all(inFlight.values());
    }
  }
}
