/** What the router reports about its attempts, implemented on a Prometheus Registry by metrics/RouterMetrics. */
import type { CircuitState } from './circuit-breaker.js';

/** Outcome label of one attempt on a target. */
export type TargetOutcome = 'success' | 'error' | 'timeout' | 'rate_limited' | 'client_error' | 'cancelled';

/** What the router reports; implemented on a Registry by `RouterMetrics`. */
export interface RouterObserver {
  attempt(model: string, target: string, outcome: TargetOutcome): void;
  /** Seconds from sending a request to a target to its first part (whole answer when not streamed). */
  latency(model: string, target: string, seconds: number): void;
  circuit(model: string, target: string, state: CircuitState, previous: CircuitState | undefined): void;
  /** An attempt after the first one of a request. */
  retry(model: string): void;
  /** A request whose every attempt failed. */
  exhausted(model: string): void;
}
