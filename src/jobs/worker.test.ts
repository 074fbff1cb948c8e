/**
 * The Worker on both back ends: running handlers by kind, retries, cancel, graceful stop,
 * and kill-and-resume (a child process SIGKILLed mid-batch; a new worker finishes the batch
 * with every item completed exactly once). Postgres as in postgres-store.test.ts
 * (CHATGATE_TEST_DATABASE_URL, a schema of its own per test).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobItem } from '../storage/job-records.js';
import { openPostgresStore } from '../storage/postgres/postgres-store.js';
import type { Store } from '../storage/spec.js';
import { openSqliteStore } from '../storage/sqlite/sqlite-store.js';
import { buildForChild } from '../../test/support/child-process/child-build.js';
import { Worker } from './worker.js';

const url = process.env.CHATGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `chatgate_jobs_${randomBytes(5).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 2 });
admin.on('error', () => undefined);
const schemas: string[] = [];
const directory = mkdtempSync(join(tmpdir(), 'chatgate-jobs-'));
const stores: Store[] = [];
const workers: Worker[] = [];
const children: ChildProcess[] = [];
let childDirectory: string | undefined;

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Timed out; last value ${JSON.stringify(value)}`);
    await pause(20);
  }
}

interface Backend {
  dialect: 'sqlite' | 'postgres';
  /** A new database; `open` gives a new Store (connection) on it each time. */
  fresh(): Promise<{ open(): Promise<Store>; env: Record<string, string> }>;
}

const backends: Backend[] = [
  {
    dialect: 'sqlite',
    async fresh() {
      const path = join(directory, `jobs-${randomBytes(4).toString('hex')}.db`);
      return {
        async open() {
          const store = openSqliteStore(path);
          stores.push(store);
          await store.migrate();
          return store;
        },
        env: { JOBS_DIALECT: 'sqlite', JOBS_SQLITE_PATH: path },
      };
    },
  },
  {
    dialect: 'postgres',
    async fresh() {
      const schema = `${prefix}_${schemas.length + 1}`;
      schemas.push(schema);
      await admin.query(`CREATE SCHEMA ${schema}`);
      return {
        async open() {
          const store = await openPostgresStore(url, { schema, max: 4 });
          stores.push(store);
          await store.migrate();
          return store;
        },
        env: { JOBS_DIALECT: 'postgres', JOBS_DATABASE_URL: url, JOBS_SCHEMA: schema },
      };
    },
  },
];

beforeAll(() => {
  childDirectory = buildForChild(['test/support/child-process/kill-child.ts']);
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const worker of workers.splice(0)) await worker.stop(0);
  for (const store of stores.splice(0)) await store.close();
});

afterAll(async () => {
  try {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await admin.end();
    rmSync(directory, { recursive: true, force: true });
    if (childDirectory !== undefined) rmSync(childDirectory, { recursive: true, force: true });
  }
});

function startWorker(options: ConstructorParameters<typeof Worker>[0]): Worker {
  const worker = new Worker({ pollMinMs: 10, pollMaxMs: 50, ...options });
  workers.push(worker);
  worker.start();
  return worker;
}

for (const backend of backends) {
  describe(`Worker on ${backend.dialect}`, () => {
    it('runs handlers by kind within the concurrency limit, retries failures, and stores results', async () => {
      const database = await backend.fresh();
      const store = await database.open();
      let running = 0;
      let peak = 0;
      let flaky = 0;
      startWorker({
        queue: store.jobs,
        concurrency: 2,
        handlers: {
          square: async (job) => {
            running += 1;
            peak = Math.max(peak, running);
            await pause(20);
            running -= 1;
            return (job.payload as number) ** 2;
          },
          flaky: async () => {
            flaky += 1;
            if (flaky < 2) throw new Error('transient');
            return 'ok';
          },
        },
      });
      for (let index = 0; index < 6; index += 1) await store.jobs.enqueue({ id: `job_sq_${index}`, kind: 'square', payload: index });
      await store.jobs.enqueue({ id: 'job_flaky', kind: 'flaky', payload: null });
      await store.jobs.enqueue({ id: 'job_nobody', kind: 'unknown', payload: null });
      await until(() => store.jobs.counts('square'), (counts) => counts.succeeded === 6);
      expect(peak).toBeLessThanOrEqual(2);
      expect((await store.jobs.get('job_sq_5'))!.result).toBe(25);
      // The failed attempt is retried after its backoff (1 s).
      const flakyJob = await until(() => store.jobs.get('job_flaky'), (job) => job?.state === 'succeeded', 10_000);
      expect(flakyJob).toMatchObject({ attempts: 2, result: 'ok' });
      expect((await store.jobs.get('job_nobody'))!.state).toBe('queued');
    });

    it('stops a cancelled job, and releases its job and items on a stop past the grace period', async () => {
      const database = await backend.fresh();
      const store = await database.open();
      let aborted = 0;
      const worker = startWorker({
        queue: store.jobs,
        leaseMs: 90,
        handlers: {
          slow: async (_job, context) => {
            await context.processItems(
              (_item, signal) =>
                new Promise((resolve, reject) => {
                  const timer = setTimeout(resolve, 60_000);
                  signal.addEventListener('abort', () => {
                    aborted += 1;
                    clearTimeout(timer);
                    reject(signal.reason);
                  });
                }),
              { concurrency: 2 },
            );
          },
        },
      });
      await store.jobs.enqueue({ id: 'job_cancel', kind: 'slow', payload: null, items: ['a', 'b', 'c'] });
      await until(() => store.jobs.itemCounts('job_cancel'), (counts) => counts.running === 2);
      expect(await store.jobs.cancel('job_cancel')).toBe(true);
      await until(async () => worker.running, (running) => running === 0);
      expect(aborted).toBe(2);
      expect(await store.jobs.get('job_cancel')).toMatchObject({ state: 'cancelled' });
      expect(await store.jobs.itemCounts('job_cancel')).toEqual({ pending: 3, running: 0, succeeded: 0, failed: 0 });

      await store.jobs.enqueue({ id: 'job_stop', kind: 'slow', payload: null, items: ['x', 'y'] });
      await until(() => store.jobs.itemCounts('job_stop'), (counts) => counts.running === 2);
      await worker.stop(50);
      expect(await store.jobs.get('job_stop')).toMatchObject({ state: 'queued', lockedBy: null, attempts: 0 });
      expect(await store.jobs.itemCounts('job_stop')).toEqual({ pending: 2, running: 0, succeeded: 0, failed: 0 });
    });

    it('aborts an item whose lease it lost, leaving its outcome to the new holder', async () => {
      const database = await backend.fresh();
      const store = await database.open();
      const lost: string[] = [];
      const worker = startWorker({
        queue: store.jobs,
        id: 'holder',
        leaseMs: 60,
        handlers: {
          slow: async (_job, context) => {
            await context.processItems(
              (item, signal) =>
                new Promise((resolve, reject) => {
                  const timer = setTimeout(() => resolve('holder'), 60_000);
                  signal.addEventListener('abort', () => {
                    lost.push(item.itemKey);
                    clearTimeout(timer);
                    reject(signal.reason);
                  });
                }),
              { concurrency: 1 },
            );
          },
        },
      });
      await store.jobs.enqueue({ id: 'job_lost', kind: 'slow', payload: null, items: ['only'] });
      await until(() => store.jobs.itemCounts('job_lost'), (counts) => counts.running === 1);
      // Simulate the lease passing to another worker.
      expect(await store.jobs.releaseItems('job_lost', 'holder')).toBe(1);
      expect((await store.jobs.claimItems('job_lost', 'thief', 1, 60_000)).map((item) => item.itemKey)).toEqual(['only']);
      await until(async () => lost.length, (count) => count === 1);
      expect(await store.jobs.completeItem('job_lost', 'only', 'thief')).toBe(true);
      expect((await store.jobs.listItems('job_lost'))[0]).toMatchObject({ state: 'succeeded', result: 'thief' });
      await until(() => store.jobs.get('job_lost'), (job) => job?.state === 'succeeded');
      expect(worker.running).toBe(0);
    });

    it('resumes a batch after its worker process is SIGKILLed: every item completed exactly once', async () => {
      const database = await backend.fresh();
      const store = await database.open();
      const total = 300;
      const keys = Array.from({ length: total }, (_, index) => `custom_id_${index}`);
      await store.jobs.enqueue({ id: 'job_batch', kind: 'batch', payload: { input: 'file-abc' }, items: keys, maxAttempts: 5 });

      const child = fork(join(childDirectory!, 'test/support/child-process/kill-child.js'), [], {
        env: { ...process.env, ...database.env, ITEM_MS: '10', LEASE_MS: '600' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      await until(() => store.jobs.itemCounts('job_batch'), (counts) => counts.succeeded >= 60, 30_000);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      const before = await store.jobs.listItems('job_batch', { state: 'succeeded', limit: total });
      const counts = await store.jobs.itemCounts('job_batch');
      expect(before.length).toBeGreaterThanOrEqual(60);
      expect(before.length).toBeLessThan(total);
      expect(counts.running).toBeGreaterThan(0); // killed mid-way, items in flight
      expect((await store.jobs.get('job_batch'))!.state).toBe('running');

      const ranHere: string[] = [];
      const resumed = await database.open();
      startWorker({
        queue: resumed.jobs,
        id: 'resumer',
        leaseMs: 600,
        handlers: {
          batch: async (_job, context) => {
            await context.processItems(async (item: JobItem) => {
              ranHere.push(item.itemKey);
              return { key: item.itemKey, by: context.workerId };
            });
            return { done: true };
          },
        },
      });
      const job = await until(() => store.jobs.get('job_batch'), (value) => value?.state === 'succeeded', 30_000);
      expect(job).toMatchObject({ attempts: 2, result: { done: true } });

      const items = await store.jobs.listItems('job_batch', { limit: total + 10 });
      expect(items).toHaveLength(total);
      expect(items.map((item) => item.itemKey)).toEqual(keys);
      expect(items.every((item) => item.state === 'succeeded')).toBe(true);
      // Completed before the kill: not re-run, the child's result kept.
      const doneBefore = new Set(before.map((item) => item.itemKey));
      expect(ranHere.filter((key) => doneBefore.has(key))).toEqual([]);
      for (const item of before) expect(items.find((other) => other.itemKey === item.itemKey)!.result).toEqual(item.result);
      // Every other item ran exactly once here.
      expect(ranHere.length).toBe(total - before.length);
      expect(new Set(ranHere).size).toBe(ranHere.length);
      for (const item of items) expect((item.result as { key: string }).key).toBe(item.itemKey);
    });
  });
}
