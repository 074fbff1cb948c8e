import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../app-env.js';
import { createMasterKeyAuthenticator } from '../auth/key-authenticator.js';
import { createErrorHandler } from '../errors/render-error.js';
import { pino } from 'pino';
import { authenticate, bearerToken } from './authenticate.js';
import { requestContext } from './request-context.js';

function app() {
  const instance = new Hono<AppEnv>();
  instance.onError(createErrorHandler(pino({ level: 'silent' }), 1000));
  instance.use('*', requestContext());
  instance.use('*', authenticate(createMasterKeyAuthenticator('sk-good')));
  instance.get('/ok', (context) => context.json({ principal: context.get('principal').keyId }));
  return instance;
}

describe('requestContext and authenticate', () => {
  it('stamps the OpenAI headers on successes and errors', async () => {
    const ok = await app().request('/ok', { headers: { authorization: 'Bearer sk-good' } });
    expect(await ok.json()).toEqual({ principal: 'master' });
    expect(ok.headers.get('x-request-id')).toMatch(/^req_/);
    expect(ok.headers.get('openai-version')).toBe('2020-10-01');
    const refused = await app().request('/ok', { headers: { authorization: 'Bearer sk-bad', 'x-request-id': 'trace-1' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toBe('trace-1');
    expect(refused.headers.get('openai-processing-ms')).not.toBeNull();
    expect((await refused.json()).error.code).toBe('invalid_api_key');
  });

  it('replaces an unreasonable client request id', async () => {
    const response = await app().request('/ok', { headers: { authorization: 'Bearer sk-good', 'x-request-id': 'x'.repeat(500) } });
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('tells a missing key from a malformed header', async () => {
    expect((await (await app().request('/ok')).json()).error.code).toBe('missing_api_key');
    const malformed = await app().request('/ok', { headers: { authorization: 'Basic abc' } });
    expect(malformed.status).toBe(401);
    expect((await malformed.json()).error.message).toContain('Bearer');
  });

  it('parses bearer tokens', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
