import { describe, expect, it } from 'vitest';
import { GatewayError, invalidRequest } from '../errors/gateway-error.js';
import { upstreamFailure, upstreamHttpError, upstreamInvalidResponse, upstreamTimeout } from '../providers/openai-compatible/upstream-error.js';
import { allTargetsFailed, classifyFailure, TargetTimeoutError } from './failures.js';

describe('classifyFailure', () => {
  it('retries 5xx, 429 (with its retry-after), 408, 409, timeouts and broken connections', () => {
    const http500 = classifyFailure(upstreamHttpError(500, {}, '{"error":{"message":"Internal error"}}', undefined));
    expect(http500).toMatchObject({ kind: 'http', retryable: true, reason: 'upstream HTTP 500 (Internal error)' });
    const limited = classifyFailure(upstreamHttpError(429, { 'retry-after': '3' }, '{"error":{"message":"Slow down"}}', undefined));
    expect(limited).toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 3000 });
    expect(classifyFailure(upstreamHttpError(408, {}, '', undefined)).retryable).toBe(true);
    expect(classifyFailure(upstreamHttpError(409, {}, '', undefined)).retryable).toBe(true);
    expect(classifyFailure(upstreamTimeout(1000))).toMatchObject({ kind: 'timeout', retryable: true });
    expect(classifyFailure(upstreamFailure(Object.assign(new Error('x'), { code: 'ECONNRESET' }), undefined, 'connect', 1000))).toMatchObject({
      kind: 'connection',
      retryable: true,
      reason: 'the upstream could not be reached (ECONNRESET)',
    });
    expect(classifyFailure(upstreamInvalidResponse('Bad JSON.')).retryable).toBe(true);
    expect(classifyFailure(new TargetTimeoutError('b', 2000, 'first token'))).toMatchObject({
      kind: 'timeout',
      reason: 'timed out after 2000 ms waiting for the first token',
    });
  });

  it("does not retry the client's own faults", () => {
    expect(classifyFailure(upstreamHttpError(400, {}, '{"error":{"message":"bad"}}', undefined)).retryable).toBe(false);
    expect(classifyFailure(upstreamHttpError(401, {}, '', undefined)).retryable).toBe(false);
    expect(classifyFailure(invalidRequest('nope')).retryable).toBe(false);
  });
});

describe('allTargetsFailed', () => {
  it('names each target and why, with 502 for mixed failures', () => {
    const error = allTargetsFailed(
      'gpt-4-turbo',
      2,
      [
        { targetId: 'primary', failure: classifyFailure(upstreamHttpError(500, {}, '{"error":{"message":"Internal error"}}', undefined)) },
        { targetId: 'backup', failure: classifyFailure(new TargetTimeoutError('backup', 2000, 'first token')) },
      ],
      3,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.status).toBe(502);
    expect(error.code).toBe('all_targets_failed');
    expect(error.message).toBe(
      "All 2 targets of 'gpt-4-turbo' failed: primary: upstream HTTP 500 (Internal error); backup: timed out after 2000 ms waiting for the first token",
    );
  });

  it('is a 429 with the shortest retry-after when every target was rate limited, 504 when all timed out', () => {
    const limited = (seconds: string) => classifyFailure(upstreamHttpError(429, { 'retry-after': seconds }, '', undefined));
    const error = allTargetsFailed('m', 2, [{ targetId: 'a', failure: limited('5') }, { targetId: 'b', failure: limited('2') }], 3);
    expect(error.status).toBe(429);
    expect(error.type).toBe('rate_limit_error');
    expect(error.headers).toEqual({ 'retry-after': '2', 'retry-after-ms': '2000' });
    const timeout = classifyFailure(upstreamTimeout(10));
    expect(allTargetsFailed('m', 2, [{ targetId: 'a', failure: timeout }, { targetId: 'b', failure: timeout }], 3).status).toBe(504);
  });
});
