/**
 * Writes audit records off the request path, losing none.
 *
 * `record()` only pushes into an in-memory queue; a single background drain appends the
 * queue to the audit log in batches (one transaction per batch) when a batch is full or a
 * short interval has passed. A batch the store refuses is retried, with a growing pause,
 * until it is written — records are never dropped. Requests are never slowed by writing;
 * instead, when the queue grows past `highWater` (the store is down or far behind),
 * `backlogged` turns true and the server refuses new requests (503) until it drains: a
 * request that was accepted is always recorded.
 *
 * With a `journal` (audit-journal.ts), `record()` first appends the record to it with a
 * synchronous write, so that a process crash loses none of the queued records: the journal
 * is replayed at the next start. The writer releases the journal's records as their batches
 * are stored (or spilled, or skipped as malformed).
 *
 * On shutdown `close()` writes what is left; whatever the store still refuses by the
 * deadline is spilled to a JSONL file in the spill directory, which `replaySpills()` writes
 * to the store at the next start.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditLogStore, AuditRecord } from '../storage/spec.js';
import type { AuditJournal } from './audit-journal.js';

export interface AuditWriterOptions {
  store: Pick<AuditLogStore, 'append'>;
  /** Where records that could not be written at shutdown go. */
  spillDirectory: string;
  /** Longest wait of a record before its batch is written. Default 100 ms. */
  flushIntervalMs?: number;
  /** Records per batch. Default 500. */
  batchSize?: number;
  /** Queue length beyond which `backlogged` is true. Default 20,000. */
  highWater?: number;
  /** Longest pause between two tries of a failing batch. Default 5 s. */
  maxRetryDelayMs?: number;
  /** Where each record goes first, synchronously (crash safety); absent: memory only. */
  journal?: Pick<AuditJournal, 'append' | 'release' | 'close'>;
  /** Told when writing fails (at most once per failing streak) and when it recovers. */
  onError?: (message: string, error?: unknown) => void;
}

const SPILL_PREFIX = 'audit-spill-';

export class AuditWriter {
  private queue: AuditRecord[] = [];
  private draining = false;
  private closed = false;
  private failing = false;
  private timer: NodeJS.Timeout | undefined;
  private written = 0;
  /** Records done with: stored, spilled or skipped as malformed (the journal's released prefix). */
  private handled = 0;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly highWater: number;
  private readonly maxRetryDelayMs: number;
  private readonly onError: (message: string, error?: unknown) => void;
  private idleWaiters: Array<() => void> = [];
  /** The append in progress, if any. */
  private inFlight: Promise<unknown> | undefined;

  constructor(private readonly options: AuditWriterOptions) {
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.batchSize = options.batchSize ?? 500;
    this.highWater = options.highWater ?? 20_000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
    this.onError = options.onError ?? ((message, error) => console.error(`chatgate: ${message}`, error ?? ''));
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  get writtenCount(): number {
    return this.written;
  }

  /** True while the queue is past its high-water mark: new requests should be refused. */
  get backlogged(): boolean {
    return this.queue.length >= this.highWater;
  }

  /** Queues a record. Synchronous and constant time; never throws, never drops. */
  record(entry: AuditRecord): void {
    this.options.journal?.append(entry);
    this.queue.push(entry);
    if (this.draining) return;
    if (this.queue.length >= this.batchSize) this.startDrain();
    else this.armTimer();
  }

  /** Resolves once everything recorded so far is written. */
  flush(): Promise<void> {
    if (this.queue.length === 0 && !this.draining) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.startDrain();
    return done;
  }

  /**
   * Stops the timer and writes what is left, for up to `deadlineMs`; the rest is spilled to
   * a file for `replaySpills()`. Records arriving afterwards are spilled at once.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    let timeout: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => (timeout = setTimeout(() => resolve('late'), deadlineMs)));
    const outcome = await Promise.race([this.flush().then(() => 'done' as const), deadline]);
    clearTimeout(timeout);
    this.closed = true;
    if (outcome === 'late') {
      // Let an append in progress settle first, so its records are neither lost nor spilled twice.
      await Promise.race([this.inFlight?.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    }
    this.spill();
    this.options.journal?.close();
  }

  /** Writes records spilled by an earlier process, then deletes their files. */
  replaySpills(): Promise<number> {
    return replaySpills(this.options.store, this.options.spillDirectory, this.batchSize);
  }

  private spill(): void {
    if (this.queue.length === 0) return;
    const records = this.queue;
    this.queue = [];
    try {
      mkdirSync(this.options.spillDirectory, { recursive: true });
      const path = join(this.options.spillDirectory, `${SPILL_PREFIX}${Date.now()}-${process.pid}.jsonl`);
      appendFileSync(path, records.map((record) => JSON.stringify(record)).join('\n') + '\n', { mode: 0o600 });
      this.release(records.length);
      this.onError(`audit log: ${records.length} records could not be written before shutdown; kept in ${path} for the next start`);
    } catch (error) {
      this.onError(`audit log: ${records.length} records could not be written nor spilled`, error);
    }
  }

  private release(count: number): void {
    this.handled += count;
    this.options.journal?.release(this.handled);
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startDrain();
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  private startDrain(): void {
    if (this.draining) return;
    if (this.closed) {
      this.spill();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draining = true;
    void this.drain();
  }

  /**
   * Writes a batch the store refused as malformed record by record, reporting (and
   * skipping) the bad ones. Stops at another kind of failure; the rest stays queued.
   */
  private async writeOneByOne(batch: AuditRecord[]): Promise<void> {
    let handled = 0;
    try {
      for (const record of batch) {
        try {
          await this.options.store.append([record]);
          this.written += 1;
        } catch (error) {
          if (!(error instanceof TypeError || error instanceof RangeError)) return;
          this.onError(`audit log: record of request ${record.requestId} is malformed and cannot be stored`, error);
        }
        handled += 1;
      }
    } finally {
      this.queue.splice(0, handled);
      this.release(handled);
    }
  }

  private async drain(): Promise<void> {
    let delay = 50;
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue.slice(0, this.batchSize);
      try {
        this.inFlight = this.options.store.append(batch);
        await this.inFlight;
        this.queue.splice(0, batch.length);
        this.written += batch.length;
        this.release(batch.length);
        delay = 50;
        if (this.failing) {
          this.failing = false;
          this.onError('audit log: writing works again');
        }
      } catch (error) {
        if (error instanceof TypeError || error instanceof RangeError) {
          // The store refuses a record as malformed (NaN, NUL, …): retrying cannot help.
          await this.writeOneByOne(batch);
          continue;
        }
        if (!this.failing) {
          this.failing = true;
          this.onError(`audit log: writing failed (${this.queue.length} records waiting); retrying until it works`, error);
        }
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, this.maxRetryDelayMs);
      }
    }
    this.inFlight = undefined;
    this.draining = false;
    if (this.queue.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** Writes records spilled at an earlier shutdown (`close()`), then deletes their files; returns how many. */
export async function replaySpills(store: Pick<AuditLogStore, 'append'>, spillDirectory: string, batchSize = 500): Promise<number> {
  let replayed = 0;
  let files: string[];
  try {
    files = readdirSync(spillDirectory).filter((name) => name.startsWith(SPILL_PREFIX) && name.endsWith('.jsonl')).sort();
  } catch {
    return 0;
  }
  for (const name of files) {
    const path = join(spillDirectory, name);
    const records = readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as AuditRecord);
    for (let start = 0; start < records.length; start += batchSize) {
      await store.append(records.slice(start, start + batchSize));
    }
    unlinkSync(path);
    replayed += records.length;
  }
  return replayed;
}
