/**
 * The HTTP server's limits from the `server:` config: how long headers may take, how long a
 * body may stay idle, how many connections may be open (docs/configuration.md).
 */
import type { Server, ServerOptions } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { abortIdleBodies } from './body-idle-timeout.js';
import { capConnections } from './connection-cap.js';

/** Idle keep-alive connections are closed after this (above common load balancers' 60 s). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

type Limits = Pick<Config['server'], 'headers_timeout_ms' | 'body_idle_timeout_ms' | 'max_connections'>;

/** Options for `http.createServer`: headers timeout (checked often enough to be near exact), no total request timeout. */
export function httpServerOptions(limits: Limits): ServerOptions {
  return {
    headersTimeout: limits.headers_timeout_ms,
    // A total would cut a large upload on a slow but steady link; bodies get an idle timeout instead.
    requestTimeout: 0,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(limits.headers_timeout_ms / 4))),
  };
}

/** At most one log line about refused connections per this interval. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * The body idle timeout and the connection cap; call at once after creating the server.
 * Refusals are logged as one warning per 10 s at most (with their count), never one per
 * connection.
 */
export function guardConnections(server: Server, limits: Limits, logger: Pick<Logger, 'warn'>, now: () => number = Date.now): void {
  abortIdleBodies(server, limits.body_idle_timeout_ms);
  let lastLine = Number.NEGATIVE_INFINITY;
  let refused = 0;
  capConnections(server, limits.max_connections, () => {
    refused += 1;
    if (now() - lastLine < REFUSAL_LOG_INTERVAL_MS) return;
    lastLine = now();
    logger.warn({ maxConnections: limits.max_connections, refused }, 'server.max_connections reached: new connections get 503 server_busy');
    refused = 0;
  });
}
