/** OpenAI's `x-ratelimit-*` response headers, from a limiter's state. */
import type { RateLimitState } from './limiter.js';

/**
 * A duration the way OpenAI writes `x-ratelimit-reset-*` (Go's time.Duration format,
 * millisecond precision, rounded up): `59ms`, `1s`, `1.2s`, `6m0s`, `1h2m3.5s`, `0s`.
 */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const secondsMs = total % 60_000;
  const whole = Math.floor(secondsMs / 1000);
  const fraction = secondsMs % 1000;
  const seconds = fraction === 0 ? `${whole}` : `${whole}.${String(fraction).padStart(3, '0').replace(/0+$/, '')}`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the limits that exist
 * (requests: the rpm window, or rpd without rpm; tokens: tpm). Empty without limits.
 */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  const headers: Record<string, string> = {};
  if (state.requests) {
    headers['x-ratelimit-limit-requests'] = String(state.requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(state.requests.remaining);
    headers['x-ratelimit-reset-requests'] = formatDuration(state.requests.resetMs);
  }
  if (state.tokens) {
    headers['x-ratelimit-limit-tokens'] = String(state.tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(state.tokens.remaining);
    headers['x-ratelimit-reset-tokens'] = formatDuration(state.tokens.resetMs);
  }
  return headers;
}
