/**
 * What a failed attempt says about its target: whether another attempt may help, a short
 * reason for the aggregated error, and the wait the upstream asked for. And the one error a
 * client gets when every target failed.
 */
import { GatewayError, type GatewayErrorOptions } from '../errors/gateway-error.js';
import { retryAfterMs } from './backoff.js';

export type FailureKind =
  /** An HTTP answer with an error status (429 excluded). */
  | 'http'
  | 'rate_limited'
  | 'timeout'
  /** Unreachable, reset, or a broken / malformed answer. */
  | 'connection'
  /** The circuit of the target was open: it was not tried. */
  | 'circuit_open'
  /** Not a GatewayError: a bug in a provider. */
  | 'internal';

export interface AttemptFailure {
  kind: FailureKind;
  /** Another attempt (on this or another target) may succeed. */
  retryable: boolean;
  /** For the aggregated message, e.g. `upstream HTTP 500 (Internal error)`. */
  reason: string;
  status: number;
  /** The wait the upstream asked for (`retry-after-ms` / `retry-after`). */
  retryAfterMs: number | undefined;
}

/** A timeout enforced by the router itself (first token, total). */
export class TargetTimeoutError extends GatewayError {
  readonly reason: string;

  constructor(targetId: string, milliseconds: number, waitingFor: 'first token' | 'whole answer') {
    const reason = `timed out after ${milliseconds} ms waiting for the ${waitingFor}`;
    super({
      status: 504,
      source: 'upstream',
      type: 'upstream_error',
      code: 'upstream_timeout',
      message: `The model's target '${targetId}' ${reason}.`,
    });
    this.reason = reason;
  }
}

/** Client errors an upstream may answer differently next time. */
const retryableClientStatuses = new Set([408, 409, 429]);

const connectionCodes = new Set(['upstream_unreachable', 'upstream_connection_lost', 'upstream_stream_error', 'upstream_invalid_response']);

export function classifyFailure(error: unknown): AttemptFailure {
  if (!(error instanceof GatewayError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'internal', retryable: true, reason: `internal error (${message})`, status: 500, retryAfterMs: undefined };
  }
  const retryAfter = retryAfterMs(error.headers);
  if (error instanceof TargetTimeoutError) return { kind: 'timeout', retryable: true, reason: error.reason, status: 504, retryAfterMs: undefined };
  if (error.code === 'upstream_timeout') {
    const connect = causeCode(error) === 'UND_ERR_CONNECT_TIMEOUT';
    return { kind: 'timeout', retryable: true, reason: connect ? 'timed out connecting' : sentence(error.message), status: 504, retryAfterMs: undefined };
  }
  if (error.code !== null && connectionCodes.has(error.code)) {
    return { kind: 'connection', retryable: true, reason: sentence(error.message), status: 502, retryAfterMs: retryAfter };
  }
  if (error.status === 429) return { kind: 'rate_limited', retryable: true, reason: httpReason(error), status: 429, retryAfterMs: retryAfter };
  if (error.status >= 500 || retryableClientStatuses.has(error.status)) {
    return { kind: 'http', retryable: true, reason: httpReason(error), status: error.status, retryAfterMs: retryAfter };
  }
  return { kind: 'http', retryable: false, reason: httpReason(error), status: error.status, retryAfterMs: retryAfter };
}

export function circuitOpenFailure(reopensInMs: number): AttemptFailure {
  const seconds = Math.max(0, Math.ceil(reopensInMs / 1000));
  return {
    kind: 'circuit_open',
    retryable: true,
    reason: reopensInMs > 1e12 ? 'circuit half-open (a probe is in flight)' : `circuit open (probed again in ${seconds} s)`,
    status: 503,
    retryAfterMs: reopensInMs > 1e12 ? undefined : Math.max(0, reopensInMs),
  };
}

/** `upstream HTTP 500 (Internal error)` from `Upstream error (HTTP 500): Internal error.` */
function httpReason(error: GatewayError): string {
  const match = /^Upstream error \(HTTP (\d+)\)(?::\s*([\s\S]*))?$/.exec(error.message);
  if (match) {
    const detail = (match[2] ?? '').trim().replace(/\.$/, '');
    return detail === '' ? `upstream HTTP ${match[1]}` : `upstream HTTP ${match[1]} (${clip(detail)})`;
  }
  const detail = clip(error.message.trim().replace(/\.$/, ''));
  return error.source === 'upstream' ? `upstream HTTP ${error.status} (${detail})` : `HTTP ${error.status} (${detail})`;
}

function sentence(message: string): string {
  const trimmed = clip(message.trim().replace(/\.$/, ''));
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}

function clip(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 200)}…`;
}

function causeCode(error: Error): string | undefined {
  const cause = (error as { cause?: unknown }).cause;
  if (typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string') return (cause as { code: string }).code;
  return undefined;
}

export interface TargetFailure {
  targetId: string;
  failure: AttemptFailure;
}

/**
 * The error of a request whose every attempt failed: names each target and why. Status 429
 * when every target was rate limited, 504 when every one timed out, else 502; `retry-after`
 * when an upstream (or an open circuit) says when to come back.
 */
export function allTargetsFailed(modelName: string, totalTargets: number, failures: TargetFailure[], maxAttempts: number): GatewayError {
  const tried = failures.filter((entry) => entry.failure.kind !== 'circuit_open');
  const deciding = tried.length > 0 ? tried : failures;
  const status = deciding.every((entry) => entry.failure.kind === 'rate_limited')
    ? 429
    : deciding.every((entry) => entry.failure.kind === 'timeout')
      ? 504
      : deciding.every((entry) => entry.failure.kind === 'circuit_open')
        ? 503
        : 502;
  const waits = failures.map((entry) => entry.failure.retryAfterMs).filter((value): value is number => value !== undefined);
  const retryAfter = waits.length > 0 ? Math.min(...waits) : undefined;
  const list = failures.map((entry) => `${entry.targetId}: ${entry.failure.reason}`).join('; ');
  const head =
    failures.length === totalTargets
      ? `All ${totalTargets} target${totalTargets === 1 ? '' : 's'} of '${modelName}' failed`
      : `${failures.length} of the ${totalTargets} targets of '${modelName}' failed (max_attempts ${maxAttempts} reached)`;
  const options: GatewayErrorOptions = {
    status,
    source: 'upstream',
    type: status === 429 ? 'rate_limit_error' : 'upstream_error',
    code: 'all_targets_failed',
    message: `${head}: ${list}`,
  };
  if (retryAfter !== undefined) {
    options.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfter / 1000))), 'retry-after-ms': String(retryAfter) };
  }
  return new GatewayError(options);
}
