import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequestLogWriter, RequestLogWriteError } from './request-log-writer.js';
import type { RequestLogRecord, RequestLogStore } from './spec.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

function record(index: number): RequestLogRecord {
  return {
    requestId: `req_${index}`,
    createdAt: 1_700_000_000_000 + index,
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'mock',
    status: 200,
    durationMs: 1,
    promptTokens: 1,
    completionTokens: 1,
    stream: false,
    errorCode: null,
    keyId: 'master',
    clientIp: null,
  };
}

/** A store that keeps each batch (one batch = one transaction) and can be told to fail. */
class FakeStore implements Pick<RequestLogStore, 'insertMany'> {
  readonly batches: RequestLogRecord[][] = [];
  calls = 0;
  failuresLeft = 0;

  constructor(private readonly alwaysFail = false) {}

  async insertMany(records: readonly RequestLogRecord[]): Promise<void> {
    this.calls += 1;
    if (this.alwaysFail || this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      throw new Error('disk on fire');
    }
    this.batches.push([...records]);
  }

  get records(): RequestLogRecord[] {
    return this.batches.flat();
  }
}

const writers: RequestLogWriter[] = [];
function writer(options: ConstructorParameters<typeof RequestLogWriter>[0]): RequestLogWriter {
  const created = new RequestLogWriter({ onError: () => {}, ...options });
  writers.push(created);
  return created;
}

afterEach(async () => {
  for (const created of writers.splice(0)) await created.close();
  vi.restoreAllMocks();
});

describe('RequestLogWriter', () => {
  it('records synchronously and writes nothing on the caller’s turn', () => {
    const store = new FakeStore();
    const log = writer({ store, batchSize: 2 });
    log.record(record(1));
    log.record(record(2));
    log.record(record(3));
    expect(store.calls).toBe(0);
    expect(log.bufferedCount).toBe(3);
  });

  it('writes many records in few batches, in order', async () => {
    const store = new FakeStore();
    const log = writer({ store, batchSize: 500, flushIntervalMs: 60_000 });
    for (let index = 0; index < 1_200; index += 1) log.record(record(index));
    await log.flush();
    expect(store.batches.map((batch) => batch.length)).toEqual([500, 500, 200]);
    expect(store.records.map((entry) => entry.requestId)).toEqual(Array.from({ length: 1_200 }, (_, index) => `req_${index}`));
    expect(log.writtenCount).toBe(1_200);
    expect(log.bufferedCount).toBe(0);
  });

  it('writes a full batch without waiting for the interval', async () => {
    const store = new FakeStore();
    const log = writer({ store, batchSize: 10, flushIntervalMs: 60_000 });
    for (let index = 0; index < 25; index += 1) log.record(record(index));
    await vi.waitFor(() => expect(store.records).toHaveLength(20));
    expect(store.batches.map((batch) => batch.length)).toEqual([10, 10]);
    expect(log.bufferedCount).toBe(5);
  });

  it('writes a partial batch once the interval has passed', async () => {
    const store = new FakeStore();
    const log = writer({ store, batchSize: 500, flushIntervalMs: 20 });
    log.record(record(1));
    log.record(record(2));
    log.record(record(3));
    await vi.waitFor(() => expect(store.calls).toBe(1));
    expect(store.batches).toEqual([[record(1), record(2), record(3)]]);
  });

  it('keeps writing records that arrive while a batch is being written', async () => {
    const store = new FakeStore();
    const log = writer({ store, batchSize: 5, flushIntervalMs: 10 });
    for (let index = 0; index < 50; index += 1) {
      log.record(record(index));
      if (index % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await vi.waitFor(() => expect(store.records).toHaveLength(50));
    expect(store.records.map((entry) => entry.requestId)).toEqual(Array.from({ length: 50 }, (_, index) => `req_${index}`));
  });

  it('uses unref’d timers so that it never keeps the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setImmediateSpy = vi.spyOn(globalThis, 'setImmediate');
    const log = writer({ store: new FakeStore(), batchSize: 2 });
    log.record(record(1));
    log.record(record(2));
    const timers = [...setTimeoutSpy.mock.results, ...setImmediateSpy.mock.results].map((result) => result.value as { hasRef(): boolean });
    expect(timers.length).toBeGreaterThan(0);
    for (const timer of timers) expect(timer.hasRef()).toBe(false);
  });

  it('flushes what is left on close and drops (and counts) records after it', async () => {
    const store = new FakeStore();
    const log = writer({ store, flushIntervalMs: 60_000 });
    for (let index = 0; index < 7; index += 1) log.record(record(index));
    await log.close();
    expect(store.batches.map((batch) => batch.length)).toEqual([7]);
    log.record(record(8));
    await log.close();
    expect(store.records).toHaveLength(7);
    expect(log.droppedCount).toBe(1);
  });

  it('retries a failing batch and keeps it when the store recovers', async () => {
    const store = new FakeStore();
    store.failuresLeft = 2;
    const onError = vi.fn();
    const log = writer({ store, maxAttempts: 3, retryDelayMs: 1, onError });
    for (let index = 0; index < 3; index += 1) log.record(record(index));
    await log.flush();
    expect(store.calls).toBe(3);
    expect(store.records).toHaveLength(3);
    expect(log.droppedCount).toBe(0);
    expect(onError).not.toHaveBeenCalled();
  });

  it('bounds memory on a failing store: drops batches after bounded retries and counts them', async () => {
    const store = new FakeStore(true);
    const errors: RequestLogWriteError[] = [];
    const log = writer({
      store,
      batchSize: 10,
      maxBufferedRecords: 100,
      maxAttempts: 2,
      retryDelayMs: 1,
      flushIntervalMs: 5,
      onError: (error) => errors.push(error),
    });
    for (let index = 0; index < 1_000; index += 1) log.record(record(index));
    expect(log.bufferedCount).toBe(100);
    expect(log.droppedCount).toBe(900);

    await log.close();
    expect(log.bufferedCount).toBe(0);
    expect(log.droppedCount).toBe(1_000);
    expect(log.writtenCount).toBe(0);
    expect(store.calls).toBe(10 * 2); // 10 batches, 2 tries each

    const overflow = errors.filter((error) => /buffer is full/.test(error.message));
    const droppedBatches = errors.filter((error) => /failed attempts/.test(error.message));
    expect(overflow).toHaveLength(1);
    expect(droppedBatches).toHaveLength(10);
    expect(droppedBatches[0]).toBeInstanceOf(RequestLogWriteError);
    expect(droppedBatches[0]!.droppedRecords).toBe(10);
    expect((droppedBatches[0]!.cause as Error).message).toBe('disk on fire');
  });

  it('survives an error handler that throws', async () => {
    const log = writer({
      store: new FakeStore(true),
      maxAttempts: 1,
      maxBufferedRecords: 1,
      onError: () => {
        throw new Error('logger broke');
      },
    });
    expect(() => {
      log.record(record(1));
      log.record(record(2));
    }).not.toThrow();
    await expect(log.flush()).resolves.toBeUndefined();
    expect(log.droppedCount).toBe(2);
  });

  it('rejects nonsensical options', () => {
    const store = new FakeStore();
    expect(() => new RequestLogWriter({ store, batchSize: 0 })).toThrow(RangeError);
    expect(() => new RequestLogWriter({ store, maxBufferedRecords: 1.5 })).toThrow(RangeError);
    expect(() => new RequestLogWriter({ store, flushIntervalMs: -1 })).toThrow(RangeError);
  });

  it('writes through to SQLite, one transaction per batch', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-writer-'));
    const store = openSqliteStore(join(directory, 'chatgate.db'));
    try {
      await store.migrate();
      const insertMany = vi.spyOn(store.requestLog, 'insertMany');
      const log = writer({ store: store.requestLog, batchSize: 250 });
      for (let index = 0; index < 1_000; index += 1) log.record(record(index));
      await log.close();
      expect(insertMany).toHaveBeenCalledTimes(4);
      expect(await store.requestLog.count()).toBe(1_000);
      expect((await store.requestLog.list({ limit: 1 }))[0]?.requestId).toBe('req_999');
    } finally {
      await store.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
