import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../storage/open-store.js';
import type { AuditRecord, Store } from '../storage/spec.js';
import { auditRecord } from '../../test/support/store-contract/store-contract.js';
import { AuditJournal, readJournalFile, replayJournals } from './audit-journal.js';
import { AuditWriter } from './audit-writer.js';
import { verifyChain } from './verify-chain.js';

const directories: string[] = [];
const stores: Store[] = [];
function directory(): string {
  const path = mkdtempSync(join(tmpdir(), 'chatgate-audit-journal-'));
  directories.push(path);
  return path;
}
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const path of directories.splice(0)) rmSync(path, { recursive: true, force: true });
});

async function sqliteStore(path: string): Promise<Store> {
  const store = await openStore({ sqlitePath: join(path, 'chatgate.db') });
  await store.migrate();
  stores.push(store);
  return store;
}

const record = (index: number): AuditRecord => auditRecord({ requestId: `req_${index}`, createdAt: 1_700_000_000_000 + index, durationMs: 1.25 + index });
const journalFiles = (path: string): string[] => readdirSync(path).filter((name) => name.startsWith('audit-journal-')).sort();
const DEAD_PID = 999_999_999;
const nobodyRuns = (): boolean => false;

describe('AuditJournal', () => {
  it('appends each record as one line, synchronously, to a 0600 file of its own', () => {
    const path = directory();
    const journal = new AuditJournal({ directory: path, pid: 4242 });
    journal.append(record(1));
    journal.append(record(2));
    // No await in between: a crash right now finds both in the file.
    const [file] = journal.files;
    expect(file).toMatch(/audit-journal-4242-\d+-1\.jsonl$/);
    expect(readJournalFile(file!).records.map((entry) => entry.requestId)).toEqual(['req_1', 'req_2']);
    expect(statSync(file!).mode & 0o777).toBe(0o600);
    journal.close();
  });

  it('empties the journal once every record is released, and keeps unreleased ones', () => {
    const path = directory();
    const journal = new AuditJournal({ directory: path });
    for (let index = 0; index < 3; index++) journal.append(record(index));
    journal.release(2);
    expect(readJournalFile(journal.files[0]!).records).toHaveLength(3);
    journal.release(3);
    expect(readFileSync(journal.files[0]!, 'utf8')).toBe('');
    journal.append(record(3));
    expect(readJournalFile(journal.files[0]!).records.map((entry) => entry.requestId)).toEqual(['req_3']);
    journal.close();
    // Not everything released: the file stays for the next start.
    expect(journalFiles(path)).toHaveLength(1);
  });

  it('rotates to a new segment while records stay unreleased, and deletes a segment once all of it is released', () => {
    const path = directory();
    const lineBytes = Buffer.byteLength(`${JSON.stringify(record(0))}\n`);
    const journal = new AuditJournal({ directory: path, segmentBytes: Math.round(lineBytes * 1.5) });
    journal.append(record(0));
    journal.append(record(1));
    journal.release(1); // record 1 is still pending and the segment is full: a new one begins
    expect(journal.files).toHaveLength(2);
    journal.append(record(2));
    journal.release(2); // the first segment is all stored: deleted; the second holds record 2
    expect(journal.files).toHaveLength(1);
    expect(readJournalFile(journal.files[0]!).records.map((entry) => entry.requestId)).toEqual(['req_2']);
    journal.release(3);
    journal.close();
    expect(journalFiles(path)).toEqual([]);
  });

  it('reports a failing write once, never throws, and says when writing works again', () => {
    const messages: string[] = [];
    const journal = new AuditJournal({ directory: directory(), onError: (message) => messages.push(message) });
    const unwritable = record(1) as AuditRecord & { size?: bigint };
    unwritable.size = 1n; // JSON.stringify throws on a BigInt
    expect(() => journal.append(unwritable)).not.toThrow();
    expect(() => journal.append(unwritable)).not.toThrow();
    journal.append(record(2));
    expect(messages).toHaveLength(2);
    expect(messages[0]).toContain('failed');
    expect(messages[1]).toContain('works again');
    expect(readJournalFile(journal.files[0]!).records.map((entry) => entry.requestId)).toEqual(['req_2']);
    journal.close();
    expect(() => journal.append(record(3))).not.toThrow();
  });
});

describe('replayJournals', () => {
  it('writes the records of a crashed process to the store, keeps the chain intact and deletes the journal', async () => {
    const path = directory();
    const crashed = new AuditJournal({ directory: path, pid: DEAD_PID });
    for (let index = 0; index < 5; index++) crashed.append(record(index));
    // The process dies here: no release, no close.
    const store = await sqliteStore(path);
    await store.auditLog.append([auditRecord({ requestId: 'earlier' })]);
    const result = await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns });
    expect(result).toEqual({ replayed: 5, alreadyStored: 0, torn: 0, malformed: 0 });
    expect((await store.auditLog.scan(0, 100)).map((entry) => entry.requestId)).toEqual(['earlier', 'req_0', 'req_1', 'req_2', 'req_3', 'req_4']);
    expect((await verifyChain(store.auditLog)).ok).toBe(true);
    expect(journalFiles(path)).toEqual([]);
  });

  it('is idempotent: records already stored (a crash between commit and release) are not stored twice, nor on a second run', async () => {
    const path = directory();
    const crashed = new AuditJournal({ directory: path, pid: DEAD_PID });
    for (let index = 0; index < 4; index++) crashed.append(record(index));
    const store = await sqliteStore(path);
    await store.auditLog.append([record(0), record(1)]);
    // A client reusing its request id for another request: not the same record.
    await store.auditLog.append([{ ...record(2), createdAt: record(2).createdAt - 5_000 }]);
    const journalCopy = readFileSync(join(path, journalFiles(path)[0]!), 'utf8');
    expect(await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns })).toMatchObject({ replayed: 2, alreadyStored: 2 });
    // A crash in the middle of a replay leaves the journal: replaying it again stores nothing twice.
    writeFileSync(join(path, `audit-journal-${DEAD_PID}-1-1.jsonl`), journalCopy);
    expect(await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns })).toMatchObject({ replayed: 0, alreadyStored: 4 });
    const ids = (await store.auditLog.scan(0, 100)).map((entry) => entry.requestId);
    expect(ids.sort()).toEqual(['req_0', 'req_1', 'req_2', 'req_2', 'req_3']);
    expect((await verifyChain(store.auditLog)).ok).toBe(true);
  });

  it('ignores a torn last line (a write cut by a machine crash)', async () => {
    const path = directory();
    const crashed = new AuditJournal({ directory: path, pid: DEAD_PID });
    crashed.append(record(0));
    crashed.append(record(1));
    appendFileSync(crashed.files[0]!, JSON.stringify(record(2)).slice(0, 40));
    const store = await sqliteStore(path);
    expect(await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns })).toEqual({ replayed: 2, alreadyStored: 0, torn: 1, malformed: 0 });
    expect((await store.auditLog.scan(0, 100)).map((entry) => entry.requestId)).toEqual(['req_0', 'req_1']);
  });

  it('leaves alone the journal of another process that still runs', async () => {
    const path = directory();
    const running = new AuditJournal({ directory: path, pid: 4242 });
    running.append(record(0));
    const store = await sqliteStore(path);
    expect(await replayJournals({ directory: path, store: store.auditLog, pid: 1, isRunning: (pid) => pid === 4242 })).toMatchObject({ replayed: 0 });
    expect(await store.auditLog.count()).toBe(0);
    expect(existsSync(running.files[0]!)).toBe(true);
    running.close();
  });

  it('skips (and reports) a record the store refuses as malformed, storing the others', async () => {
    const path = directory();
    const crashed = new AuditJournal({ directory: path, pid: DEAD_PID });
    crashed.append(record(0));
    crashed.append({ ...record(1), status: 5000 });
    crashed.append(record(2));
    const store = await sqliteStore(path);
    const messages: string[] = [];
    const result = await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns, onError: (message) => messages.push(message) });
    expect(result).toMatchObject({ replayed: 2, malformed: 1 });
    expect(messages.join()).toContain('req_1');
  });
});

describe('AuditWriter with a journal', () => {
  it('journals each record before record() returns, so a crash before the batch is written loses none', async () => {
    const path = directory();
    const journal = new AuditJournal({ directory: path, pid: DEAD_PID });
    // A store that never answers: the batch is in flight when the process "dies".
    const writer = new AuditWriter({ store: { append: () => new Promise(() => undefined) }, spillDirectory: path, flushIntervalMs: 1, journal, onError: () => {} });
    for (let index = 0; index < 7; index++) writer.record(record(index));
    const store = await sqliteStore(path);
    expect(await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns })).toMatchObject({ replayed: 7 });
    expect(await store.auditLog.count()).toBe(7);
  });

  it('releases the journal as batches are stored, and deletes it on close', async () => {
    const path = directory();
    const store = await sqliteStore(path);
    const journal = new AuditJournal({ directory: path });
    const writer = new AuditWriter({ store: store.auditLog, spillDirectory: path, flushIntervalMs: 1, batchSize: 10, journal, onError: () => {} });
    for (let index = 0; index < 25; index++) writer.record(record(index));
    expect(readJournalFile(journal.files[0]!).records).toHaveLength(25);
    await writer.flush();
    expect(readFileSync(journal.files[0]!, 'utf8')).toBe('');
    await writer.close();
    expect(journalFiles(path)).toEqual([]);
    expect(await store.auditLog.count()).toBe(25);
  });

  it('keeps the journal when records could not be stored nor spilled at shutdown', async () => {
    const path = directory();
    const journal = new AuditJournal({ directory: path, pid: DEAD_PID });
    const writer = new AuditWriter({
      store: { append: async () => { throw new Error('down'); } },
      spillDirectory: join(path, 'not-a-directory'),
      flushIntervalMs: 1, maxRetryDelayMs: 5, journal, onError: () => {},
    });
    writeFileSync(join(path, 'not-a-directory'), 'a file where the spill directory should be');
    writer.record(record(0));
    await writer.close(50);
    expect(journalFiles(path)).toHaveLength(1);
    const store = await sqliteStore(path);
    expect(await replayJournals({ directory: path, store: store.auditLog, isRunning: nobodyRuns })).toMatchObject({ replayed: 1 });
  });
});
