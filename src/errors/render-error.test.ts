import { Hono } from 'hono';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createErrorHandler } from './render-error.js';
import { invalidRequest } from './gateway-error.js';

function appWith(error: Error) {
  const logger = pino({ level: 'silent' });
  const logged = vi.spyOn(logger, 'error');
  const app = new Hono();
  app.onError(createErrorHandler(logger, 1000));
  app.post('/body', () => {
    throw error;
  });
  return { app, logged };
}

describe('createErrorHandler', () => {
  it('renders a failure of a request whose client went away as a 499 client abort, without an error log line', async () => {
    const { app, logged } = appWith(new Error('Client connection prematurely closed.'));
    const controller = new AbortController();
    controller.abort();
    const response = await app.request('/body', { method: 'POST', body: '{', signal: controller.signal });
    expect(response.status).toBe(499);
    expect(await response.json()).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'client_closed_request' } });
    expect(logged).not.toHaveBeenCalled();
  });

  it('keeps an unexpected error of a request still there a 500 with an error log line, and a GatewayError as it is', async () => {
    const broken = appWith(new Error('boom'));
    const response = await broken.app.request('/body', { method: 'POST', body: '{}' });
    expect(response.status).toBe(500);
    expect(broken.logged).toHaveBeenCalledTimes(1);

    const refused = appWith(invalidRequest('bad'));
    const controller = new AbortController();
    controller.abort();
    expect((await refused.app.request('/body', { method: 'POST', body: '{}', signal: controller.signal })).status).toBe(400);
  });
});
