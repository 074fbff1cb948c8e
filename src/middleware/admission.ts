/**
 * Refuses new requests with 503 while the audit log cannot keep up (the database is down
 * or far behind), so that every accepted request is recorded.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { GatewayError } from '../errors/gateway-error.js';

export function refuseWhile(backlogged: () => boolean): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    if (backlogged()) {
      throw new GatewayError({
        status: 503,
        type: 'server_error',
        code: 'audit_backlog',
        headers: { 'retry-after': '1' },
        message: 'The server cannot record requests right now (its audit log is behind), so it accepts none. Retry shortly.',
      });
    }
    await next();
  };
}
