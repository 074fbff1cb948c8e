import { describe, expect, it } from 'vitest';
import { ModelConcurrency } from './model-concurrency.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ModelConcurrency', () => {
  it('caps each model and the total, and a busy model does not hold up another', async () => {
    const limits = new ModelConcurrency(3, (model) => (model === 'a' ? 2 : 5));
    const a1 = await limits.acquire('a');
    const a2 = await limits.acquire('a');
    let a3Started = false;
    const a3 = limits.acquire('a').then((release) => ((a3Started = true), release));
    const b1 = await limits.acquire('b');
    expect(limits.active()).toBe(3);
    let b2Started = false;
    const b2 = limits.acquire('b').then((release) => ((b2Started = true), release));
    await tick();
    expect([a3Started, b2Started]).toEqual([false, false]);
    b1();
    await tick();
    // The slot goes to b (a is at its own limit), although a waited longer.
    expect([a3Started, b2Started]).toEqual([false, true]);
    a1();
    await tick();
    expect(a3Started).toBe(true);
    (await a3)();
    (await b2)();
    a2();
    a2();
    expect(limits.active()).toBe(0);
  });

  it('an aborted waiter leaves the queue', async () => {
    const limits = new ModelConcurrency(1, () => 1);
    const first = await limits.acquire('a');
    const abort = new AbortController();
    const waiting = limits.acquire('a', abort.signal);
    abort.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    first();
    const again = await limits.acquire('a');
    expect(limits.active('a')).toBe(1);
    again();
  });
});
