/**
 * assistBatches looks for running batches of other processes once per interval, for the
 * life of the process, on one signal: each look must leave no listener behind on it.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Worker } from '../jobs/worker.js';
import { assistBatches, type BatchJobDependencies } from './batch-job.js';

describe('assistBatches', () => {
  it('leaves no abort listener behind on its signal after each look', async () => {
    let looks = 0;
    const dependencies = {
      resources: {
        listByStatus: async () => {
          looks += 1;
          return [];
        },
      },
    } as unknown as BatchJobDependencies;
    const stop = new AbortController();
    const running = assistBatches(dependencies, { id: 'worker-1' } as unknown as Worker, stop.signal, 1);
    while (looks < 30) await new Promise((resolve) => setTimeout(resolve, 5));
    // At most the listener of the pause in progress.
    expect(getEventListeners(stop.signal, 'abort').length).toBeLessThanOrEqual(1);
    stop.abort(new Error('test over'));
    await running;
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
