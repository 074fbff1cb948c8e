/**
 * Writes request-log records off the request path. `record()` only pushes into a
 * bounded in-memory buffer; a background drain writes the buffer in batches (one
 * `insertMany`, hence one transaction, per batch) when a batch is full or a short interval
 * has passed since the first unwritten record, whichever comes first.
 *
 * Failure policy: a batch the store refuses is retried a few times with a growing pause,
 * then dropped and reported through `onError`. While the store is failing or slow the
 * buffer fills up to its cap, beyond which new records are dropped (and counted) instead
 * of growing memory without limit. Losing log lines is preferred over slowing or failing
 * requests.
 *
 * The timers are unref'd: a writer never keeps the process alive. Call `close()` on
 * shutdown to write what is left (records still buffered at a hard exit are lost).
 */
import type { RequestLogRecord, RequestLogStore } from './spec.js';

export interface RequestLogWriterOptions {
  store: Pick<RequestLogStore, 'insertMany'>;
  /** Longest time a record waits in the buffer before a write starts. Default 200 ms. */
  flushIntervalMs?: number;
  /** Records per batch; a full batch is written without waiting. Default 500. */
  batchSize?: number;
  /** Records kept in memory at most (besides the batch being written). Default 10,000. */
  maxBufferedRecords?: number;
  /** Tries per batch before it is dropped. Default 3. */
  maxAttempts?: number;
  /** Pause before the second try, doubled before each further one. Default 100 ms. */
  retryDelayMs?: number;
  /**
   * Told about lost records: once per dropped batch (with the store's last error as
   * `cause`) and once each time the buffer starts overflowing. Defaults to console.error.
   * Must not throw (if it does, the error is ignored).
   */
  onError?: (error: RequestLogWriteError) => void;
}

/** What `onError` receives: why, and how many records were lost. */
export class RequestLogWriteError extends Error {
  readonly droppedRecords: number;

  constructor(message: string, droppedRecords: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RequestLogWriteError';
    this.droppedRecords = droppedRecords;
  }
}

const defaults = {
  flushIntervalMs: 200,
  batchSize: 500,
  maxBufferedRecords: 10_000,
  maxAttempts: 3,
  retryDelayMs: 100,
};

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeNumber(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}

function defaultOnError(error: RequestLogWriteError): void {
  console.error(`chatgate: ${error.message}`, error.cause ?? '');
}

interface FlushWaiter {
  /** Resolved once this many accepted records are settled (written or dropped). */
  target: number;
  resolve: () => void;
}

export class RequestLogWriter {
  private readonly store: Pick<RequestLogStore, 'insertMany'>;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxBufferedRecords: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly onError: (error: RequestLogWriteError) => void;

  private buffer: RequestLogRecord[] = [];
  /** Records taken into the buffer, ever. */
  private accepted = 0;
  /** Accepted records since written or dropped after failed writes (FIFO, so a prefix). */
  private settled = 0;
  private written = 0;
  private dropped = 0;
  /** Write everything up to this accepted count even if it makes a partial batch. */
  private flushUpTo = 0;
  private waiters: FlushWaiter[] = [];
  private draining = false;
  private overflowing = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private pauseTimer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(options: RequestLogWriterOptions) {
    this.store = options.store;
    this.flushIntervalMs = nonNegativeNumber('flushIntervalMs', options.flushIntervalMs ?? defaults.flushIntervalMs);
    this.batchSize = positiveInteger('batchSize', options.batchSize ?? defaults.batchSize);
    this.maxBufferedRecords = positiveInteger('maxBufferedRecords', options.maxBufferedRecords ?? defaults.maxBufferedRecords);
    this.maxAttempts = positiveInteger('maxAttempts', options.maxAttempts ?? defaults.maxAttempts);
    this.retryDelayMs = nonNegativeNumber('retryDelayMs', options.retryDelayMs ?? defaults.retryDelayMs);
    this.onError = options.onError ?? defaultOnError;
  }

  /** Records dropped so far: refused by the store, over the buffer cap, or after close. */
  get droppedCount(): number {
    return this.dropped;
  }

  /** Records the store has accepted so far. */
  get writtenCount(): number {
    return this.written;
  }

  /** Records waiting in memory (not counting a batch being written). */
  get bufferedCount(): number {
    return this.buffer.length;
  }

  /**
   * Queues a record for writing. Synchronous, constant time, never throws: when the writer
   * is closed or the buffer is full the record is dropped and counted. The record must not
   * be changed afterwards.
   */
  record(entry: RequestLogRecord): void {
    if (this.closed) {
      this.dropped += 1;
      return;
    }
    if (this.buffer.length >= this.maxBufferedRecords) {
      this.dropped += 1;
      if (!this.overflowing) {
        this.overflowing = true;
        this.report(
          new RequestLogWriteError(
            `request log buffer is full (${this.maxBufferedRecords} records): dropping new records until the store catches up`,
            1,
          ),
        );
      }
      return;
    }
    this.buffer.push(entry);
    this.accepted += 1;
    if (this.draining) return; // the running drain picks it up or re-arms the timer
    if (this.buffer.length >= this.batchSize) this.scheduleDrainSoon();
    else this.armTimer();
  }

  /**
   * Writes every record recorded before the call (or drops it after failed tries).
   * Resolves, never rejects; failures go to `onError`.
   */
  flush(): Promise<void> {
    const target = this.accepted;
    if (this.settled >= target) return Promise.resolve();
    this.flushUpTo = Math.max(this.flushUpTo, target);
    const done = new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
    this.startDrain();
    return done;
  }

  /** Stops accepting records, writes what is left and stops the timers. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.pauseTimer?.ref(); // a retry pause in progress now holds the process open too
    await this.flush();
    this.clearTimers();
  }

  private armTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushUpTo = Math.max(this.flushUpTo, this.accepted);
      this.startDrain();
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  /** A full batch: write it on the next turn of the event loop, never inside `record()`. */
  private scheduleDrainSoon(): void {
    if (this.immediate !== undefined) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.startDrain();
    });
    this.immediate.unref();
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private shouldWrite(): boolean {
    if (this.buffer.length === 0) return false;
    return this.buffer.length >= this.batchSize || this.flushUpTo > this.settled;
  }

  private startDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.clearTimers();
    void this.drain();
  }

  /** The single consumer: one batch at a time, in order, until nothing is due. */
  private async drain(): Promise<void> {
    try {
      while (this.shouldWrite()) {
        const batch = this.takeBatch();
        await this.writeBatch(batch);
        this.settled += batch.length;
        this.resolveWaiters();
      }
    } finally {
      this.draining = false;
    }
    if (this.buffer.length > 0 && !this.closed) this.armTimer();
  }

  private takeBatch(): RequestLogRecord[] {
    let batch: RequestLogRecord[];
    if (this.buffer.length <= this.batchSize) {
      batch = this.buffer;
      this.buffer = [];
    } else {
      batch = this.buffer.splice(0, this.batchSize);
    }
    this.overflowing = false;
    return batch;
  }

  /** Never rejects: a batch is either written or dropped and reported. */
  private async writeBatch(batch: RequestLogRecord[]): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt += 1) {
      try {
        await this.store.insertMany(batch);
        this.written += batch.length;
        return;
      } catch (error) {
        lastError = error;
      }
      if (attempt < this.maxAttempts) await this.pause(this.retryDelayMs * 2 ** (attempt - 1));
    }
    this.dropped += batch.length;
    const reason = lastError instanceof Error ? lastError.message : String(lastError);
    this.report(
      new RequestLogWriteError(
        `request log: dropped ${batch.length} records after ${this.maxAttempts} failed attempts: ${reason}`,
        batch.length,
        lastError,
      ),
    );
  }

  /** Unref'd while running, but holds the process open during `close()` so shutdown finishes the write. */
  private pause(milliseconds: number): Promise<void> {
    return new Promise((resolve) => {
      this.pauseTimer = setTimeout(() => {
        this.pauseTimer = undefined;
        resolve();
      }, milliseconds);
      if (!this.closed) this.pauseTimer.unref();
    });
  }

  private resolveWaiters(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.target <= this.settled) {
      this.waiters.shift()!.resolve();
    }
  }

  private report(error: RequestLogWriteError): void {
    try {
      this.onError(error);
    } catch {
      // A failing error handler must not break the writer or the request that called record().
    }
  }
}
