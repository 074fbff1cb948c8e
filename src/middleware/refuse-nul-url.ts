/**
 * Refuses a request whose URL holds a NUL character (`%00` in its path or query string) with
 * 400: no id, name or filter contains one, and the stores cannot take one (PostgreSQL text
 * refuses NUL, so such a lookup was a 500).
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { invalidRequest } from '../errors/gateway-error.js';

export function refuseNulInUrl(): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    const url = context.req.url;
    const pathAndQuery = url.slice(url.indexOf('/', url.indexOf('//') + 2));
    if (/%00/i.test(pathAndQuery) || pathAndQuery.includes('\u0000')) {
      throw invalidRequest('The URL of the request contains a NUL character (%00), which no id or parameter can hold.', null, 'invalid_url');
    }
    await next();
  };
}
