/**
 * The 429s a refused reservation becomes, worded like OpenAI's.
 *
 * - Requests or tokens over a window: `rate_limit_exceeded` (type `requests` / `tokens`),
 *   with `retry-after` (whole seconds, rounded up) and `retry-after-ms`.
 * - A request that alone exceeds a limit (tokens > tpm, a limit of 0): the same code, but
 *   no `retry-after` and `x-should-retry: false` (the official SDKs then don't retry):
 *   waiting cannot help, the request must be made smaller.
 * - Budget used up: `insufficient_quota` (type `insufficient_quota`) with
 *   `x-should-retry: false` (as OpenAI: retrying soon is pointless); `retry-after` says when
 *   the period resets (none for a `total` budget or a request costing more than the
 *   whole budget).
 * Every one carries the `x-ratelimit-*` headers of the state.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { formatDuration, rateLimitHeaders } from './headers.js';
import type { Refused } from './limiter.js';

export interface RefusalErrorOptions {
  /** How the subject is named in the message, e.g. the key id `key_abc…`. */
  subjectLabel: string;
  /** For the budget reset time in the message; default Date.now(). */
  now?: number;
}

/** `$1.50`, `$0.000425`: at least two decimals, up to six (micro-USD). */
export function formatUsd(micros: number): string {
  const text = (micros / 1_000_000).toFixed(6).replace(/0+$/, '');
  const [whole, fraction = ''] = text.split('.');
  return `$${whole}.${fraction.padEnd(2, '0')}`;
}

const WINDOW_NAMES = {
  requests: { minute: 'requests per minute (RPM)', day: 'requests per day (RPD)' },
  tokens: { minute: 'tokens per minute (TPM)' },
} as const;

export function refusalError(refusal: Refused, options: RefusalErrorOptions): GatewayError {
  const headers: Record<string, string> = rateLimitHeaders(refusal.state);
  if (refusal.retryAfterMs !== null) {
    headers['retry-after'] = String(Math.ceil(refusal.retryAfterMs / 1000));
    headers['retry-after-ms'] = String(Math.ceil(refusal.retryAfterMs));
  }
  const on = `on key ${options.subjectLabel}`;

  if (refusal.reason === 'budget') {
    headers['x-should-retry'] = 'false';
    const period = refusal.window === 'total' ? 'your total budget of ' + formatUsd(refusal.limit) : `your budget of ${formatUsd(refusal.limit)} per ${refusal.window}`;
    let message: string;
    if (refusal.tooLarge) {
      message = `This request could cost up to ${formatUsd(refusal.requested)}, more than ${period} ${on}. Reduce max_tokens or the prompt.`;
    } else {
      message = `You exceeded ${period} ${on}: Used ${formatUsd(refusal.used)}, Requested up to ${formatUsd(refusal.requested)}.`;
      if (refusal.retryAfterMs !== null) {
        message += ` The budget resets at ${new Date((options.now ?? Date.now()) + refusal.retryAfterMs).toISOString()}.`;
      }
    }
    return new GatewayError({ status: 429, type: 'insufficient_quota', code: 'insufficient_quota', message, headers });
  }

  const what = refusal.reason === 'requests' ? WINDOW_NAMES.requests[refusal.window as 'minute' | 'day'] : WINDOW_NAMES.tokens.minute;
  let message: string;
  if (refusal.tooLarge) {
    headers['x-should-retry'] = 'false';
    message =
      refusal.reason === 'tokens'
        ? `Request too large for ${what} ${on}: Limit ${refusal.limit}, Requested ${refusal.requested}. The input or output tokens must be reduced in order to run successfully.`
        : `Rate limit reached for ${what} ${on}: Limit ${refusal.limit}, Requested ${refusal.requested}. This key may not make requests.`;
  } else {
    message = `Rate limit reached for ${what} ${on}: Limit ${refusal.limit}, Used ${refusal.used}, Requested ${refusal.requested}. Please try again in ${formatDuration(refusal.retryAfterMs ?? 0)}.`;
  }
  return new GatewayError({ status: 429, type: refusal.reason, code: 'rate_limit_exceeded', message, headers });
}
