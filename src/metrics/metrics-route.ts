/**
 * `GET /metrics`: the Prometheus text exposition of the registry. Outside `/v1`, and like the
 * admin API only for the master key and admin keys (Prometheus sends them with
 * `authorization: { credentials: … }` / `bearer_token`).
 */
import { Hono } from 'hono';
import type { MiddlewareHandler } from 'hono';
import type { Registry } from 'prom-client';
import type { AppEnv } from '../app-env.js';
import { requireAdmin } from '../middleware/authorize.js';

export function metricsRoutes(registry: Registry, authentication: MiddlewareHandler<AppEnv>): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.use('*', authentication);
  routes.use('*', requireAdmin());
  routes.get('/', async (context) => {
    const text = await registry.metrics();
    return context.body(text, 200, { 'content-type': registry.contentType });
  });
  return routes;
}
