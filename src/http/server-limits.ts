/**
 * The HTTP server's limits from the `server:` config: how long headers may take, how long a
 * body may stay idle, how many connections may be open (docs/configuration.md).
 */
import type { Server, ServerOptions } from 'node:http';
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

/** The body idle timeout and the connection cap; call at once after creating the server. */
export function guardConnections(server: Server, limits: Limits): void {
  abortIdleBodies(server, limits.body_idle_timeout_ms);
  capConnections(server, limits.max_connections);
}
