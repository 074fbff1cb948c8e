import { describe, expect, it } from 'vitest';
import { SequencePool } from './sequence-pool.js';

const never = new AbortController().signal;

describe('SequencePool', () => {
  it('lends free items, then queues waiters first in, first out', async () => {
    const pool = new SequencePool(['a', 'b'], { maxWaiting: 4, maxWaitMs: 0 }, 'm');
    expect(await pool.acquire(never)).toBe('a');
    expect(await pool.acquire(never)).toBe('b');
    const order: string[] = [];
    const first = pool.acquire(never).then((item) => order.push(`first:${item}`));
    const second = pool.acquire(never).then((item) => order.push(`second:${item}`));
    expect(pool.inUse).toBe(4);
    pool.release('b');
    pool.release('a');
    await Promise.all([first, second]);
    expect(order).toEqual(['first:b', 'second:a']);
  });

  it('drops an aborted waiter and refuses beyond the queue bound', async () => {
    const pool = new SequencePool(['a'], { maxWaiting: 1, maxWaitMs: 0 }, 'm');
    await pool.acquire(never);
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    await expect(pool.acquire(never)).rejects.toMatchObject({ status: 429, code: 'model_overloaded', headers: { 'retry-after': expect.stringMatching(/^[1-9]\d*$/) } });
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    pool.release('a');
    expect(pool.inUse).toBe(0);
    expect(await pool.acquire(never)).toBe('a');
  });

  it('refuses a waiter that waited too long', async () => {
    const pool = new SequencePool(['a'], { maxWaiting: 4, maxWaitMs: 50 }, 'm');
    await pool.acquire(never);
    const started = performance.now();
    await expect(pool.acquire(never)).rejects.toMatchObject({ status: 429, code: 'model_overloaded', message: expect.stringContaining('waited') });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(pool.inUse).toBe(1);
    pool.release('a');
    expect(await pool.acquire(never)).toBe('a');
  });
});
