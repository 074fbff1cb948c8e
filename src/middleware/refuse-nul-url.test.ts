import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../app-env.js';
import { createErrorHandler } from '../errors/render-error.js';
import { refuseNulInUrl } from './refuse-nul-url.js';

function app(): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.onError(createErrorHandler({ error: () => undefined, warn: () => undefined } as never, 1_000_000));
  routes.use('*', refuseNulInUrl());
  routes.get('*', (context) => context.json({ path: context.req.path }));
  return routes;
}

describe('refuseNulInUrl', () => {
  it('refuses %00 in the path or the query with 400 in OpenAI shape', async () => {
    for (const url of ['/v1/files/%00', '/v1/files/a%00b/content', '/v1/files?after=%00', '/admin/logs?user=x%00', '/v1/files?%00=1']) {
      const response = await app().request(url);
      expect(response.status, url).toBe(400);
      expect(await response.json(), url).toEqual({ error: { message: expect.stringContaining('NUL'), type: 'invalid_request_error', param: null, code: 'invalid_url' } });
    }
  });

  it('lets other URLs through, %2500 (a literal "%00") included', async () => {
    for (const url of ['/v1/files/file-abc', '/v1/files?after=%2500', '/v1/models/%F0%9F%99%82']) expect((await app().request(url)).status, url).toBe(200);
  });
});
