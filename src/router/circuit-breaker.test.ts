import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitTransition } from './circuit-breaker.js';

function breaker(now: { value: number }) {
  const transitions: CircuitTransition[] = [];
  const instance = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => now.value, onTransition: (t) => transitions.push(t) });
  return { instance, transitions };
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures, not after interrupted ones', () => {
    const now = { value: 0 };
    const { instance, transitions } = breaker(now);
    instance.tryAcquire()!.failure('a');
    instance.tryAcquire()!.failure('b');
    instance.tryAcquire()!.success();
    instance.tryAcquire()!.failure('c');
    instance.tryAcquire()!.failure('d');
    expect(instance.state).toBe('closed');
    instance.tryAcquire()!.failure('e');
    expect(instance.state).toBe('open');
    expect(transitions).toEqual([{ from: 'closed', to: 'open', reason: '3 consecutive failures, last: e' }]);
    expect(instance.tryAcquire()).toBeUndefined();
    expect(instance.available).toBe(false);
  });

  it('goes half-open after the cooldown with one probe at a time, and closes when it succeeds', () => {
    const now = { value: 0 };
    const { instance, transitions } = breaker(now);
    for (let i = 0; i < 3; i++) instance.tryAcquire()!.failure('x');
    now.value = 999;
    expect(instance.tryAcquire()).toBeUndefined();
    now.value = 1000;
    expect(instance.available).toBe(true);
    const probe = instance.tryAcquire()!;
    expect(probe.probe).toBe(true);
    expect(instance.state).toBe('half-open');
    expect(instance.tryAcquire()).toBeUndefined();
    probe.success();
    expect(instance.state).toBe('closed');
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again when the probe fails, restarting the cooldown; a neutral probe frees the slot', () => {
    const now = { value: 0 };
    const { instance } = breaker(now);
    for (let i = 0; i < 3; i++) instance.tryAcquire()!.failure('x');
    now.value = 1500;
    instance.tryAcquire()!.neutral();
    expect(instance.state).toBe('half-open');
    instance.tryAcquire()!.failure('still down');
    expect(instance.state).toBe('open');
    expect(instance.reopensAt).toBe(2500);
    now.value = 2400;
    expect(instance.tryAcquire()).toBeUndefined();
  });

  it('forceAcquire probes an open circuit before its cooldown ends', () => {
    const now = { value: 0 };
    const { instance } = breaker(now);
    for (let i = 0; i < 3; i++) instance.tryAcquire()!.failure('x');
    const forced = instance.forceAcquire();
    expect(forced.probe).toBe(true);
    expect(instance.state).toBe('half-open');
    forced.success();
    expect(instance.state).toBe('closed');
  });

  it('ignores a second report on the same permit', () => {
    const now = { value: 0 };
    const { instance } = breaker(now);
    const permit = instance.tryAcquire()!;
    permit.failure('x');
    permit.failure('x');
    permit.failure('x');
    expect(instance.consecutiveFailures).toBe(1);
  });
});
