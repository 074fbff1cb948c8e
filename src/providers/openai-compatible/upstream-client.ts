/**
 * HTTP to the upstreams, with undici: one keep-alive connection pool per upstream origin,
 * created on first use and reused by every request to that origin until `close()`.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../../errors/gateway-error.js';
import { upstreamFailure } from './upstream-error.js';
import type { UpstreamRequestLifetime } from './request-lifetime.js';

export interface UpstreamClientOptions {
  /** Most connections opened to one origin (default: no limit, since LLM streams are long-lived). */
  connectionsPerOrigin?: number | null;
  /** How long an idle connection is kept when the upstream gives no keep-alive hint (default 30 s). */
  keepAliveTimeoutMs?: number;
}

export type UpstreamResponse = Dispatcher.ResponseData;

export class UpstreamClient {
  private readonly pools = new Map<string, Pool>();
  private readonly poolOptions: Pool.Options;
  private closed = false;

  constructor(options: UpstreamClientOptions = {}) {
    this.poolOptions = {
      connections: options.connectionsPerOrigin ?? null,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: 600_000,
      // The whole-request timeout of each call (UpstreamRequestLifetime) replaces undici's own.
      headersTimeout: 0,
      bodyTimeout: 0,
    };
  }

  /**
   * POSTs a JSON body. Resolves once the response headers arrive, whatever the status;
   * rejects with a GatewayError (502 unreachable, 504 timeout, 499 client gone) otherwise.
   */
  async post(
    origin: string,
    path: string,
    headers: string[],
    body: string,
    lifetime: UpstreamRequestLifetime,
    connectTimeoutMs?: number,
  ): Promise<UpstreamResponse> {
    lifetime.start();
    try {
      return await this.pool(origin, connectTimeoutMs).request({ method: 'POST', path, headers, body, signal: lifetime.signal });
    } catch (error) {
      lifetime.release();
      throw upstreamFailure(error, lifetime.cause, 'connect', lifetime.timeoutMs);
    }
  }

  /** Closes every pool, letting requests in flight finish. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  /** One pool per origin and connection timeout (`connect.timeout` is a pool option in undici). */
  private pool(origin: string, connectTimeoutMs: number | undefined): Pool {
    const key = connectTimeoutMs === undefined ? origin : `${origin}#connect=${connectTimeoutMs}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      if (this.closed) {
        throw new GatewayError({ status: 503, source: 'gateway', type: 'server_error', code: 'provider_closed', message: 'The server is shutting down.' });
      }
      pool = new Pool(origin, connectTimeoutMs === undefined ? this.poolOptions : { ...this.poolOptions, connect: { timeout: connectTimeoutMs } });
      this.pools.set(key, pool);
    }
    return pool;
  }
}
