import { describe, expect, it } from 'vitest';
import { SequencePool } from './sequence-pool.js';

const never = new AbortController().signal;

describe('SequencePool', () => {
  it('lends free items, then queues waiters first in, first out', async () => {
    const pool = new SequencePool(['a', 'b'], 4, 'm');
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
    const pool = new SequencePool(['a'], 1, 'm');
    await pool.acquire(never);
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    await expect(pool.acquire(never)).rejects.toMatchObject({ status: 503, code: 'model_overloaded' });
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    pool.release('a');
    expect(pool.inUse).toBe(0);
    expect(await pool.acquire(never)).toBe('a');
  });
});
