/**
 * CORS for browser clients. Written here rather than taken from hono/cors because that
 * middleware touches `context.res` before the route runs, which makes @hono/node-server
 * build a full web Response (and a ReadableStream) for every request — a third of the
 * gateway's throughput. Headers here go through `context.header()` before the response
 * exists, which costs nothing for clients that send no Origin (the SDKs on a server).
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { setResponseHeader } from './response-headers.js';

const EXPOSED_HEADERS = [
  'x-request-id',
  'openai-processing-ms',
  'openai-version',
  'x-chatgate-error-source',
  'x-chatgate-cache',
  'x-chatgate-cache-similarity',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
].join(', ');

export function cors(allowedOrigins: readonly string[]): MiddlewareHandler<AppEnv> {
  const anyOrigin = allowedOrigins.includes('*');
  const allowed = new Set(allowedOrigins);
  return async (context, next) => {
    const origin = context.req.header('origin');
    if (!origin) return next();
    const allowOrigin = anyOrigin ? '*' : allowed.has(origin) ? origin : null;
    if (context.req.method === 'OPTIONS' && context.req.header('access-control-request-method')) {
      if (!allowOrigin) return context.body(null, 204, { vary: 'Origin' });
      const requested = context.req.header('access-control-request-headers');
      return context.body(null, 204, {
        'access-control-allow-origin': allowOrigin,
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': requested ?? 'authorization, content-type, x-request-id, openai-organization, openai-project',
        'access-control-max-age': '600',
        vary: 'Origin',
      });
    }
    if (allowOrigin) {
      setResponseHeader(context, 'access-control-allow-origin', allowOrigin);
      setResponseHeader(context, 'access-control-expose-headers', EXPOSED_HEADERS);
      if (!anyOrigin) setResponseHeader(context, 'vary', 'Origin');
    }
    return next();
  };
}
