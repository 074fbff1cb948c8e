/**
 * The audit journal: every audit record is appended to a local file with one synchronous
 * write before its answer is released, so that a process crash (SIGKILL, OOM kill) loses no
 * record that the in-memory queue of `AuditWriter` had not yet written to the database. The
 * OS page cache keeps what was written when the process dies; with `fsync: true` each write
 * is also flushed to the disk, which covers a machine crash or power loss too.
 *
 * Files are `audit-journal-<pid>-<start>-<n>.jsonl` (one JSON record per line) in the data
 * directory, mode 0600. The writer tells the journal how many of the records appended so
 * far are durably in the database (`release`); a segment whose records are all stored is
 * deleted, and the current one is emptied once everything is stored. Under a steady stream
 * of records (the queue never empty) the current segment is closed once it holds
 * `segmentBytes` and a new one begun, so the journal stays bounded.
 *
 * At start, `replayJournals` writes the records of journals left by processes that are no
 * longer running (a crash) to the database, skipping those already stored (same request id,
 * arrival time, duration, method, path and status): a crash between the database commit and
 * the release leaves them in both places. A torn last line (a write cut by a machine crash)
 * is ignored: its answer was never released.
 */
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditLogStore, AuditRecord } from '../storage/spec.js';

const JOURNAL_PREFIX = 'audit-journal-';
const JOURNAL_SUFFIX = '.jsonl';
const JOURNAL_NAME = /^audit-journal-(\d+)-\d+-\d+\.jsonl$/;

export interface AuditJournalOptions {
  /** The data directory: each instance has its own journal files there. */
  directory: string;
  /** fsync after every record (survives a machine crash; slower). Default false. */
  fsync?: boolean;
  /** A segment this big is closed and a new one begun while records are still unstored. Default 4 MiB. */
  segmentBytes?: number;
  /** Told when a write fails (once per failing streak). */
  onError?: (message: string, error?: unknown) => void;
  /** This process's id (tests). */
  pid?: number;
}

interface ClosedSegment {
  path: string;
  /** Records appended up to the end of this segment (all of them are in it or earlier ones). */
  end: number;
}

export class AuditJournal {
  private fd: number | undefined;
  private path = '';
  private size = 0;
  private appendedCount = 0;
  private releasedCount = 0;
  private segmentNumber = 0;
  private failing = false;
  private readonly closedSegments: ClosedSegment[] = [];
  private readonly fsync: boolean;
  private readonly segmentBytes: number;
  private readonly pid: number;
  private readonly startedAt = Date.now();
  private readonly onError: (message: string, error?: unknown) => void;

  constructor(private readonly options: AuditJournalOptions) {
    this.fsync = options.fsync ?? false;
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    this.pid = options.pid ?? process.pid;
    this.onError = options.onError ?? ((message, error) => console.error(`chatgate: ${message}`, error ?? ''));
    mkdirSync(options.directory, { recursive: true, mode: 0o700 });
    this.openSegment();
  }

  /** Records appended so far. */
  get appended(): number {
    return this.appendedCount;
  }

  /** The journal files this journal holds now (oldest first). */
  get files(): string[] {
    return [...this.closedSegments.map((segment) => segment.path), ...(this.fd === undefined ? [] : [this.path])];
  }

  /** Appends one record with a synchronous write (and fsync if configured). Never throws. */
  append(record: AuditRecord): void {
    if (this.fd === undefined) return;
    this.appendedCount += 1;
    try {
      const line = `${JSON.stringify(record)}\n`;
      // One write(2) of the string (no Buffer of our own on the hot path); a short write
      // (disk full, a signal) is finished from a Buffer. An ASCII line has as many bytes as characters.
      const written = writeSync(this.fd, line);
      let bytes = written;
      if (written !== line.length) {
        const buffer = Buffer.from(line, 'utf8');
        while (bytes < buffer.length) bytes += writeSync(this.fd, buffer, bytes, buffer.length - bytes);
      }
      if (this.fsync) fsyncSync(this.fd);
      this.size += bytes;
      if (this.failing) {
        this.failing = false;
        this.onError('audit journal: writing works again');
      }
    } catch (error) {
      if (!this.failing) {
        this.failing = true;
        this.onError(`audit journal: writing ${this.path} failed; records are kept in memory only until it works again`, error);
      }
    }
  }

  /** The first `count` records appended are durably stored elsewhere: their files may go. */
  release(count: number): void {
    if (count <= this.releasedCount) return;
    this.releasedCount = Math.min(count, this.appendedCount);
    try {
      while (this.closedSegments.length > 0 && this.closedSegments[0]!.end <= this.releasedCount) {
        unlinkSync(this.closedSegments.shift()!.path);
      }
      if (this.fd === undefined) return;
      if (this.releasedCount === this.appendedCount) {
        if (this.size > 0) {
          ftruncateSync(this.fd, 0);
          this.size = 0;
        }
      } else if (this.size >= this.segmentBytes) {
        closeSync(this.fd);
        this.closedSegments.push({ path: this.path, end: this.appendedCount });
        this.openSegment();
      }
    } catch (error) {
      this.onError('audit journal: rotating failed', error);
    }
  }

  /** Closes the file; deletes the journal when every record was released. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
      if (this.releasedCount === this.appendedCount) {
        for (const path of [...this.closedSegments.map((segment) => segment.path), this.path]) unlinkSync(path);
        this.closedSegments.length = 0;
      }
    } catch (error) {
      this.onError('audit journal: closing failed', error);
    }
  }

  private openSegment(): void {
    this.segmentNumber += 1;
    this.path = join(this.options.directory, `${JOURNAL_PREFIX}${this.pid}-${this.startedAt}-${this.segmentNumber}${JOURNAL_SUFFIX}`);
    // 'a': every write goes to the end of the file, also after it was truncated.
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = 0;
  }
}

/** The records of one journal file; a line that does not parse (a torn write) is counted, not returned. */
export function readJournalFile(path: string): { records: AuditRecord[]; torn: number } {
  const records: AuditRecord[] = [];
  let torn = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as AuditRecord).requestId === 'string') records.push(parsed as AuditRecord);
      else torn += 1;
    } catch {
      torn += 1;
    }
  }
  return { records, torn };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ReplayOptions {
  directory: string;
  store: Pick<AuditLogStore, 'append' | 'list'>;
  /** Records per append. Default 500. */
  batchSize?: number;
  /** This process's id: its journals (a previous process with the same id) are replayed. */
  pid?: number;
  /** Whether the process that owns a journal still runs (its journal is then left alone). */
  isRunning?: (pid: number) => boolean;
  onError?: (message: string, error?: unknown) => void;
}

export interface ReplayResult {
  /** Records written to the store. */
  replayed: number;
  /** Records found in the store already. */
  alreadyStored: number;
  /** Lines that did not parse (torn by a crash). */
  torn: number;
  /** Records the store refused as malformed (reported, skipped). */
  malformed: number;
}

function sameRecord(stored: AuditRecord, journaled: AuditRecord): boolean {
  return (
    stored.requestId === journaled.requestId &&
    stored.createdAt === journaled.createdAt &&
    stored.durationMs === journaled.durationMs &&
    stored.method === journaled.method &&
    stored.path === journaled.path &&
    stored.status === journaled.status
  );
}

async function isStored(store: Pick<AuditLogStore, 'list'>, record: AuditRecord): Promise<boolean> {
  const candidates = await store.list({ requestId: record.requestId, from: record.createdAt, to: record.createdAt + 1, limit: 100 });
  return candidates.some((candidate) => sameRecord(candidate, record));
}

/**
 * Writes the records of journals left by processes that no longer run to the store (those
 * not stored yet, in their order), then deletes those journals. Idempotent: run again after
 * a crash in the middle, it stores nothing twice.
 */
export async function replayJournals(options: ReplayOptions): Promise<ReplayResult> {
  const batchSize = options.batchSize ?? 500;
  const ownPid = options.pid ?? process.pid;
  const running = options.isRunning ?? isRunning;
  const onError = options.onError ?? ((message, error) => console.error(`chatgate: ${message}`, error ?? ''));
  const result: ReplayResult = { replayed: 0, alreadyStored: 0, torn: 0, malformed: 0 };
  let names: string[];
  try {
    names = readdirSync(options.directory);
  } catch {
    return result;
  }
  const files = names
    .map((name) => ({ name, match: JOURNAL_NAME.exec(name) }))
    .filter((entry) => entry.match !== null && (Number(entry.match[1]) === ownPid || !running(Number(entry.match[1]))))
    .map((entry) => entry.name)
    .sort((a, b) => {
      // By process, start time and segment number (numerically).
      const pa = a.slice(JOURNAL_PREFIX.length, -JOURNAL_SUFFIX.length).split('-').map(Number);
      const pb = b.slice(JOURNAL_PREFIX.length, -JOURNAL_SUFFIX.length).split('-').map(Number);
      return pa[1]! - pb[1]! || pa[0]! - pb[0]! || pa[2]! - pb[2]!;
    });
  for (const name of files) {
    const path = join(options.directory, name);
    const { records, torn } = readJournalFile(path);
    result.torn += torn;
    const missing: AuditRecord[] = [];
    for (const record of records) {
      if (await isStored(options.store, record)) result.alreadyStored += 1;
      else missing.push(record);
    }
    for (let start = 0; start < missing.length; start += batchSize) {
      const batch = missing.slice(start, start + batchSize);
      try {
        await options.store.append(batch);
        result.replayed += batch.length;
      } catch (error) {
        if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
        for (const record of batch) {
          try {
            await options.store.append([record]);
            result.replayed += 1;
          } catch (recordError) {
            if (!(recordError instanceof TypeError || recordError instanceof RangeError)) throw recordError;
            result.malformed += 1;
            onError(`audit journal: record of request ${record.requestId} is malformed and cannot be stored`, recordError);
          }
        }
      }
    }
    unlinkSync(path);
  }
  return result;
}
