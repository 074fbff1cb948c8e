/**
 * The job queue's part of the storage contract (run by registerStoreContract on every back end).
 */
import { describe, expect, it } from 'vitest';
import { JobConflictError, type JobItem } from '../../../src/storage/job-records.js';
import type { Store } from '../../../src/storage/spec.js';
import type { ContractHarness } from './harness.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function registerJobQueueContract(harness: ContractHarness): void {
  async function stores(count: number): Promise<Store[]> {
    const database = await harness.freshDatabase();
    const opened: Store[] = [];
    for (let index = 0; index < count; index += 1) opened.push(await database.open());
    await opened[0]!.migrate();
    return opened;
  }

  describe(`${harness.dialect} store contract: job queue`, () => {
    it('enqueues, claims by kind and priority, completes, and keeps payload and result', async () => {
      const [store] = await stores(1);
      const queue = store!.jobs;
      const low = await queue.enqueue({ id: 'job_low', kind: 'batch', payload: { file: 'f1', n: [1, 2] } });
      expect(low).toMatchObject({ id: 'job_low', kind: 'batch', state: 'queued', attempts: 0, maxAttempts: 3, payload: { file: 'f1', n: [1, 2] }, lockedBy: null });
      await queue.enqueue({ id: 'job_high', kind: 'batch', payload: null, priority: 5 });
      await queue.enqueue({ id: 'job_other', kind: 'other', payload: 'x' });
      await queue.enqueue({ id: 'job_later', kind: 'batch', payload: 1, runAfter: Date.now() + 60_000 });
      await expect(queue.enqueue({ id: 'job_low', kind: 'batch', payload: 1 })).rejects.toBeInstanceOf(JobConflictError);
      await expect(queue.enqueue({ kind: '', payload: 1 })).rejects.toThrow(/kind must be a non-empty string/);

      const claimed = await queue.claim('w1', ['batch'], 10_000, 5);
      expect(claimed.map((job) => job.id)).toEqual(['job_high', 'job_low']);
      expect(claimed[0]).toMatchObject({ state: 'running', attempts: 1, lockedBy: 'w1' });
      expect(claimed[0]!.lockedUntil).toBeGreaterThan(Date.now() + 5_000);
      expect(await queue.claim('w2', ['batch'], 10_000, 5)).toEqual([]);
      expect(await queue.claim('w2', [], 10_000, 5)).toEqual([]);

      expect(await queue.heartbeat('job_low', 'w1', 20_000)).toBe(true);
      expect(await queue.heartbeat('job_low', 'w2', 20_000)).toBe(false);
      expect(await queue.complete('job_low', 'w2', 'nope')).toBe(false);
      expect(await queue.complete('job_low', 'w1', { lines: 2, ok: true })).toBe(true);
      expect(await queue.complete('job_low', 'w1', 'again')).toBe(false);
      expect(await queue.get('job_low')).toMatchObject({ state: 'succeeded', result: { lines: 2, ok: true }, lockedBy: null, lockedUntil: null });
      expect(await queue.get('job_missing')).toBeNull();
      expect(await queue.counts()).toEqual({ queued: 2, running: 1, succeeded: 1, failed: 0, cancelled: 0 });
      expect(await queue.counts('other')).toEqual({ queued: 1, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
    });

    it('retries a failed job with backoff until max attempts, releases and cancels', async () => {
      const [store] = await stores(1);
      const queue = store!.jobs;
      await queue.enqueue({ id: 'job_f', kind: 'k', payload: null, maxAttempts: 2 });
      await queue.claim('w1', ['k'], 10_000, 1);
      expect(await queue.fail('job_f', 'w2', 'not mine')).toBe(false);
      const before = Date.now();
      expect(await queue.fail('job_f', 'w1', 'boom')).toBe('retry');
      const retried = (await queue.get('job_f'))!;
      expect(retried).toMatchObject({ state: 'queued', error: 'boom', attempts: 1 });
      expect(retried.runAfter).toBeGreaterThanOrEqual(before + 1_000); // backoff
      expect(await queue.claim('w1', ['k'], 10_000, 1)).toEqual([]);
      expect(await queue.fail('job_f', 'w1', 'x')).toBe(false);

      await queue.enqueue({ id: 'job_g', kind: 'g', payload: null, maxAttempts: 2 });
      await queue.claim('w1', ['g'], 10_000, 1);
      expect(await queue.fail('job_g', 'w1', 'first', { retryDelayMs: 0 })).toBe('retry');
      expect((await queue.claim('w1', ['g'], 10_000, 1))[0]).toMatchObject({ attempts: 2 });
      expect(await queue.fail('job_g', 'w1', 'second', { retryDelayMs: 0 })).toBe('failed');
      expect(await queue.get('job_g')).toMatchObject({ state: 'failed', error: 'second', attempts: 2 });

      await queue.enqueue({ id: 'job_r', kind: 'r', payload: null });
      await queue.claim('w1', ['r'], 10_000, 1);
      expect(await queue.release('job_r', 'w1')).toBe(true);
      expect(await queue.get('job_r')).toMatchObject({ state: 'queued', attempts: 0, lockedBy: null });

      expect(await queue.cancel('job_r')).toBe(true);
      expect(await queue.cancel('job_r')).toBe(false);
      await queue.enqueue({ id: 'job_c', kind: 'c', payload: null });
      await queue.claim('w1', ['c'], 10_000, 1);
      expect(await queue.cancel('job_c')).toBe(true);
      expect(await queue.heartbeat('job_c', 'w1', 10_000)).toBe(false);
      expect(await queue.complete('job_c', 'w1', 1)).toBe(false);
      expect(await queue.get('job_c')).toMatchObject({ state: 'cancelled' });
      expect(await queue.claim('w1', ['c', 'r'], 10_000, 5)).toEqual([]);
      expect(await queue.cancel('job_g')).toBe(false);
    });

    it('lets another worker (another connection) take a job whose lease expired', async () => {
      const [first, second] = await stores(2);
      await first!.jobs.enqueue({ id: 'job_l', kind: 'k', payload: null, maxAttempts: 2 });
      expect(await first!.jobs.claim('w1', ['k'], 60, 1)).toHaveLength(1);
      expect(await second!.jobs.claim('w2', ['k'], 60, 1)).toEqual([]);
      await pause(100);
      const [taken] = await second!.jobs.claim('w2', ['k'], 60, 1);
      expect(taken).toMatchObject({ id: 'job_l', lockedBy: 'w2', attempts: 2 });
      expect(await first!.jobs.heartbeat('job_l', 'w1', 1_000)).toBe(false);
      expect(await first!.jobs.complete('job_l', 'w1', 'late')).toBe(false);
      // Out of attempts: an expired lease fails the job instead.
      await pause(100);
      expect(await first!.jobs.recoverExpired()).toBe(1);
      expect(await first!.jobs.get('job_l')).toMatchObject({ state: 'failed', error: expect.stringMatching(/lease expired/) });
    });

    it('leases items, records each outcome once, and reclaims expired item leases', async () => {
      const [first, second] = await stores(2);
      const queue = first!.jobs;
      await queue.enqueue({ id: 'job_i', kind: 'batch', payload: null, items: ['a', 'b', 'c', 'd'] });
      expect(await queue.addItems('job_i', ['d', 'e'])).toBe(1);
      expect(await queue.itemCounts('job_i')).toEqual({ pending: 5, running: 0, succeeded: 0, failed: 0 });

      const mine = await queue.claimItems('job_i', 'w1', 2, 60);
      expect(mine.map((item) => [item.itemKey, item.state, item.attempt, item.worker])).toEqual([
        ['a', 'running', 1, 'w1'],
        ['b', 'running', 1, 'w1'],
      ]);
      const theirs = await second!.jobs.claimItems('job_i', 'w2', 10, 10_000);
      expect(theirs.map((item) => item.itemKey)).toEqual(['c', 'd', 'e']);
      expect(await second!.jobs.claimItems('job_i', 'w2', 10, 10_000)).toEqual([]);

      expect(await queue.completeItem('job_i', 'c', { line: 'c' })).toBe(true);
      expect(await second!.jobs.completeItem('job_i', 'c', { line: 'other' })).toBe(false);
      expect(await queue.failItem('job_i', 'c', 'late')).toBe(false);
      expect(await queue.failItem('job_i', 'd', 'bad request', { status: 400 })).toBe(true);
      expect(await queue.completeItem('job_i', 'd', 'late')).toBe(false);
      expect(await queue.extendItems('job_i', 'w2', ['c', 'd', 'e'], 10_000)).toEqual(['e']);
      expect(await queue.releaseItems('job_i', 'w2', ['e'])).toBe(1);

      await pause(100); // a and b: w1's leases expire
      const reclaimed = await second!.jobs.claimItems('job_i', 'w2', 10, 10_000);
      expect(reclaimed.map((item) => [item.itemKey, item.attempt])).toEqual([
        ['a', 2],
        ['b', 2],
        ['e', 1],
      ]);
      expect(await queue.extendItems('job_i', 'w1', ['a', 'b'], 10_000)).toEqual([]);
      for (const key of ['a', 'b', 'e']) expect(await second!.jobs.completeItem('job_i', key, key)).toBe(true);

      const items = await queue.listItems('job_i');
      expect(items.map((item: JobItem) => [item.itemKey, item.state, item.result, item.error])).toEqual([
        ['a', 'succeeded', 'a', null],
        ['b', 'succeeded', 'b', null],
        ['c', 'succeeded', { line: 'c' }, null],
        ['d', 'failed', { status: 400 }, 'bad request'],
        ['e', 'succeeded', 'e', null],
      ]);
      expect((await queue.listItems('job_i', { state: 'succeeded', afterKey: 'b', limit: 1 })).map((item) => item.itemKey)).toEqual(['c']);
      expect(await queue.itemCounts('job_i')).toEqual({ pending: 0, running: 0, succeeded: 4, failed: 1 });
      expect(await queue.claimItems('job_i', 'w1', 10, 10)).toEqual([]);
    });

    it('never gives the same job or item to two of four concurrent workers', async () => {
      const workers = await stores(4);
      const queue = workers[0]!.jobs;
      for (let index = 0; index < 40; index += 1) await queue.enqueue({ id: `job_${String(index).padStart(3, '0')}`, kind: 'k', payload: index });
      const jobClaims = await Promise.all(
        workers.map(async (store, index) => {
          const got: string[] = [];
          for (;;) {
            const jobs = await store.jobs.claim(`w${index}`, ['k'], 60_000, 3);
            expect(jobs.length).toBeLessThanOrEqual(3);
            if (jobs.length === 0) return got;
            got.push(...jobs.map((job) => job.id));
          }
        }),
      );
      const allJobs = jobClaims.flat();
      expect(allJobs).toHaveLength(40);
      expect(new Set(allJobs).size).toBe(40);

      const keys = Array.from({ length: 500 }, (_, index) => `custom_${index}`);
      await queue.enqueue({ id: 'job_big', kind: 'batch', payload: null, items: keys });
      const completions = await Promise.all(
        workers.map(async (store, index) => {
          const done: string[] = [];
          for (;;) {
            const items = await store.jobs.claimItems('job_big', `w${index}`, 7, 60_000);
            expect(items.length).toBeLessThanOrEqual(7);
            if (items.length === 0) return done;
            for (const item of items) {
              if (await store.jobs.completeItem('job_big', item.itemKey, { by: index })) done.push(item.itemKey);
            }
          }
        }),
      );
      const all = completions.flat();
      expect(all).toHaveLength(500);
      expect(new Set(all).size).toBe(500);
      expect(await queue.itemCounts('job_big')).toEqual({ pending: 0, running: 0, succeeded: 500, failed: 0 });
      const attempts = (await queue.listItems('job_big', { limit: 1_000 })).map((item) => item.attempt);
      expect(attempts.every((attempt) => attempt === 1)).toBe(true);
    });
  });
}
