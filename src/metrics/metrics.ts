/**
 * Prometheus metrics (prom-client). One Registry is created by the server and passed in; the
 * default global registry is never used, so tests and several servers in one process do not
 * share counters. Served as text by `GET /metrics` (see metrics-route.ts).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitState } from '../router/circuit-breaker.js';
import type { RouterObserver, TargetOutcome } from '../router/router-observer.js';

/** The gauge value of each circuit state. */
export const circuitStateValue: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

export class RouterMetrics implements RouterObserver {
  readonly #targetRequests: Counter<'model' | 'target' | 'outcome'>;
  readonly #latency: Histogram<'model' | 'target'>;
  readonly #circuitState: Gauge<'model' | 'target'>;
  readonly #transitions: Counter<'model' | 'target' | 'to'>;
  readonly #retries: Counter<'model'>;
  readonly #exhausted: Counter<'model'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#targetRequests = new Counter({
      name: 'chatgate_target_requests_total',
      help: 'Attempts on the targets of router models, by outcome.',
      labelNames: ['model', 'target', 'outcome'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'chatgate_target_latency_seconds',
      help: 'Time from sending a request to a target to its first streamed part (or whole answer).',
      labelNames: ['model', 'target'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.#circuitState = new Gauge({
      name: 'chatgate_circuit_state',
      help: 'Circuit breaker state of each target: 0 closed, 1 half-open, 2 open.',
      labelNames: ['model', 'target'],
      registers,
    });
    this.#transitions = new Counter({
      name: 'chatgate_circuit_transitions_total',
      help: 'Circuit breaker state changes, by the state entered.',
      labelNames: ['model', 'target', 'to'],
      registers,
    });
    this.#retries = new Counter({
      name: 'chatgate_router_retries_total',
      help: 'Attempts after the first one of a request (retries and fallbacks).',
      labelNames: ['model'],
      registers,
    });
    this.#exhausted = new Counter({
      name: 'chatgate_router_exhausted_total',
      help: 'Requests whose every target failed.',
      labelNames: ['model'],
      registers,
    });
  }

  attempt(model: string, target: string, outcome: TargetOutcome): void {
    this.#targetRequests.inc({ model, target, outcome });
  }

  latency(model: string, target: string, seconds: number): void {
    this.#latency.observe({ model, target }, seconds);
  }

  circuit(model: string, target: string, state: CircuitState, previous: CircuitState | undefined): void {
    this.#circuitState.set({ model, target }, circuitStateValue[state]);
    if (previous !== undefined) this.#transitions.inc({ model, target, to: state });
  }

  retry(model: string): void {
    this.#retries.inc({ model });
  }

  exhausted(model: string): void {
    this.#exhausted.inc({ model });
  }
}

export interface GatewayMetrics {
  registry: Registry;
  router: RouterMetrics;
}

/** A fresh registry with the gateway's metrics (and the process metrics, prefixed `chatgate_`). */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  return { registry, router: new RouterMetrics(registry) };
}
