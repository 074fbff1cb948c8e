/**
 * First stage of every request: gives it an id (the client's own `x-request-id` is kept
 * when it is reasonable) and stamps the OpenAI response headers on whatever comes back,
 * errors included: `x-request-id`, `openai-processing-ms`, `openai-version`.
 */
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { setResponseHeader } from './response-headers.js';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

export function newRequestId(): string {
  return `req_${randomUUID().replaceAll('-', '')}`;
}

export function requestContext(): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    const startedAt = performance.now();
    const clientId = context.req.header('x-request-id');
    const requestId = clientId && CLIENT_REQUEST_ID.test(clientId) ? clientId : newRequestId();
    context.set('requestId', requestId);
    context.set('startedAt', startedAt);
    // Set before the response exists: Hono copies prepared headers into it for free.
    setResponseHeader(context, 'x-request-id', requestId);
    setResponseHeader(context, 'openai-version', '2020-10-01');
    await next();
    if (context.get('writtenDirectly')) return;
    // Routes build responses with the prepared headers above, so this is a plain Headers object.
    context.res.headers.set('openai-processing-ms', String(Math.max(0, Math.round(performance.now() - startedAt))));
  };
}
