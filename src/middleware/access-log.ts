/**
 * One log line per request, written through pino's asynchronous destination so that
 * logging never blocks a request. Only metadata is logged: never headers, keys or bodies.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { AppEnv } from '../app-env.js';

export function accessLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    await next();
    if (!logger.isLevelEnabled(context.env?.internal?.quiet === true ? 'debug' : 'info')) return;
    const status = context.res.status;
    const line = {
      requestId: context.get('requestId'),
      method: context.req.method,
      path: context.req.path,
      status,
      model: context.get('modelName'),
      durationMs: Math.round((performance.now() - context.get('startedAt')) * 100) / 100,
      errorSource: context.res.headers.get('x-chatgate-error-source') ?? undefined,
    };
    if (status >= 500) logger.error(line, 'request failed');
    else if (context.env?.internal?.quiet === true) logger.debug(line, 'request');
    else logger.info(line, 'request');
  };
}
