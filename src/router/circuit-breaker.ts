/**
 * A circuit breaker for one target of a router model.
 *
 *   closed ──(failure_threshold consecutive failures)──▶ open
 *   open ──(cooldown elapsed, a request asks)──▶ half-open (one probe at a time)
 *   half-open ──(probe succeeds)──▶ closed      half-open ──(probe fails)──▶ open (cooldown restarts)
 *
 * A request takes a permit with `tryAcquire()` before calling the target and reports the
 * outcome on the permit: success, failure, or neutral (the client went away, or the client's
 * own fault: says nothing about the target's health). Transitions are reported to `onTransition`
 * (metrics and logs).
 */

export type CircuitState = 'closed' | 'half-open' | 'open';

export interface CircuitTransition {
  from: CircuitState;
  to: CircuitState;
  reason: string;
}

export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
  onTransition?: (transition: CircuitTransition) => void;
}

/** Permission to call the target once; report exactly one outcome (later reports are ignored). */
export interface CircuitPermit {
  /** This call is the half-open probe. */
  readonly probe: boolean;
  success(): void;
  failure(reason: string): void;
  neutral(): void;
}

export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #consecutiveFailures = 0;
  #openedAt = 0;
  #probeInFlight = false;
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.#state;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** When an open circuit lets a probe through (ms timestamp); 0 when closed. */
  get reopensAt(): number {
    if (this.#state === 'open') return this.#openedAt + this.#options.cooldownMs;
    if (this.#state === 'half-open' && this.#probeInFlight) return Number.MAX_SAFE_INTEGER;
    return 0;
  }

  /** Whether a request would be let through now (without taking a permit). */
  get available(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') return this.#now() >= this.#openedAt + this.#options.cooldownMs;
    return !this.#probeInFlight;
  }

  /** A permit when the circuit lets the call through, else undefined. */
  tryAcquire(): CircuitPermit | undefined {
    if (this.#state === 'closed') return this.#permit(false);
    if (this.#state === 'open') {
      if (this.#now() < this.#openedAt + this.#options.cooldownMs) return undefined;
      this.#transition('half-open', 'cooldown elapsed');
    }
    if (this.#probeInFlight) return undefined;
    this.#probeInFlight = true;
    return this.#permit(true);
  }

  /**
   * A permit whatever the state: used when every target's circuit is open, to try the one
   * whose cooldown ends first rather than failing without trying. An open circuit goes
   * half-open at once for this probe.
   */
  forceAcquire(): CircuitPermit {
    if (this.#state === 'closed') return this.#permit(false);
    if (this.#state === 'open') this.#transition('half-open', 'every target is open: probing early');
    if (this.#probeInFlight) return this.#permit(false);
    this.#probeInFlight = true;
    return this.#permit(true);
  }

  #permit(probe: boolean): CircuitPermit {
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (probe) this.#probeInFlight = false;
      return true;
    };
    return {
      probe,
      success: () => {
        if (settle()) this.#onSuccess(probe);
      },
      failure: (reason: string) => {
        if (settle()) this.#onFailure(probe, reason);
      },
      neutral: () => {
        settle();
      },
    };
  }

  #onSuccess(probe: boolean): void {
    this.#consecutiveFailures = 0;
    if (this.#state !== 'closed' && (probe || this.#state === 'half-open')) this.#transition('closed', 'probe succeeded');
  }

  #onFailure(probe: boolean, reason: string): void {
    this.#consecutiveFailures++;
    if (this.#state === 'half-open' && probe) {
      this.#openedAt = this.#now();
      this.#transition('open', `probe failed: ${reason}`);
      return;
    }
    if (this.#state === 'closed' && this.#consecutiveFailures >= this.#options.failureThreshold) {
      this.#openedAt = this.#now();
      this.#transition('open', `${this.#consecutiveFailures} consecutive failures, last: ${reason}`);
    }
  }

  #transition(to: CircuitState, reason: string): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#options.onTransition?.({ from, to, reason });
  }
}
