import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../errors/gateway-error.js';
import { redactSecret, upstreamFailure, upstreamHttpError } from './upstream-error.js';

describe('upstreamHttpError', () => {
  it("reads OpenAI's envelope, older vLLM's flat body and Ollama's string error", () => {
    const openAi = upstreamHttpError(404, {}, '{"error":{"message":"no model","type":"invalid_request_error","code":"model_not_found","param":"model"}}', undefined);
    expect(openAi).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', source: 'upstream' });
    expect(openAi.message).toBe('Upstream error (HTTP 404): no model');
    const vllm = upstreamHttpError(400, {}, '{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}', undefined);
    expect(vllm).toMatchObject({ status: 400, type: 'BadRequestError', code: null, message: 'Upstream error (HTTP 400): too long' });
    const ollama = upstreamHttpError(404, {}, '{"error":"model \\"llama9\\" not found"}', undefined);
    expect(ollama).toMatchObject({ status: 404, type: 'invalid_request_error', message: 'Upstream error (HTTP 404): model "llama9" not found' });
  });

  it('gives a type per status when the upstream gives none, and turns odd statuses into 502', () => {
    expect(upstreamHttpError(429, {}, '', undefined)).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Upstream error (HTTP 429).' });
    expect(upstreamHttpError(503, {}, 'Service Unavailable', undefined)).toMatchObject({ status: 503, type: 'upstream_error' });
    expect(upstreamHttpError(302, {}, '', undefined).status).toBe(502);
  });

  it('copies retry-after and retry-after-ms only', () => {
    const error = upstreamHttpError(429, { 'retry-after': '2', 'retry-after-ms': '1500', 'x-ratelimit-limit-requests': '10' }, '', undefined);
    expect(error.headers).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500' });
  });

  it('redacts the api key and masked keys', () => {
    const error = upstreamHttpError(401, {}, '{"error":{"message":"Incorrect API key provided: sk-proj-ab***********yz12. Key my-key-123 is bad"}}', 'my-key-123');
    expect(error.message).toBe('Upstream error (HTTP 401): Incorrect API key provided: [redacted]. Key [redacted] is bad');
    expect(redactSecret('nothing to hide', 'key')).toBe('nothing to hide');
  });
});

describe('upstreamFailure', () => {
  it('tells client aborts, timeouts, unreachable upstreams and broken streams apart', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(upstreamFailure(refused, undefined, 'connect', 1000)).toMatchObject({ status: 502, code: 'upstream_unreachable' });
    expect(upstreamFailure(new AggregateError([refused]), undefined, 'connect', 1000).message).toContain('ECONNREFUSED');
    expect(upstreamFailure(refused, 'client', 'connect', 1000)).toMatchObject({ status: 499, source: 'gateway' });
    expect(upstreamFailure(new Error('aborted'), 'timeout', 'stream', 1000)).toMatchObject({ status: 504, code: 'upstream_timeout' });
    const headersTimeout = Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(upstreamFailure(headersTimeout, undefined, 'connect', 1000).status).toBe(504);
    expect(upstreamFailure(new Error('other side closed'), undefined, 'stream', 1000)).toMatchObject({ status: 502, code: 'upstream_stream_error' });
    expect(upstreamFailure(new Error('reset'), undefined, 'body', 1000)).toMatchObject({ status: 502, code: 'upstream_connection_lost' });
    const existing = new GatewayError({ status: 418, type: 'x', message: 'x' });
    expect(upstreamFailure(existing, 'client', 'connect', 1000)).toBe(existing);
  });
});
