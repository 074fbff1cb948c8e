import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import type { StreamPart } from '../providers/spec.js';
import { ChatChunkRenderer } from './chat-chunk-renderer.js';
import { createStreamResponse, writeStreamToNode, type StreamOutcome } from './stream-response.js';

const renderer = () => new ChatChunkRenderer({ id: 'chatcmpl-1', created: 1, model: 'm', systemFingerprint: null }, false);

describe('createStreamResponse', () => {
  it('throws before the first byte, so the caller can answer with a status', async () => {
    async function* failing(): AsyncGenerator<StreamPart> {
      throw new GatewayError({ status: 429, type: 'rate_limit_error', message: 'slow down' });
    }
    await expect(createStreamResponse({ parts: failing(), renderer: renderer(), abortController: new AbortController() })).rejects.toMatchObject({ status: 429 });
  });

  it('turns a failure after the first byte into an error frame, without [DONE]', async () => {
    async function* failingLater(): AsyncGenerator<StreamPart> {
      yield { type: 'text-delta', choice: 0, text: 'partial' };
      throw new GatewayError({ status: 502, type: 'upstream_error', message: 'upstream died', source: 'upstream' });
    }
    let outcome: unknown;
    const response = await createStreamResponse({ parts: failingLater(), renderer: renderer(), abortController: new AbortController(), onEnd: (value) => (outcome = value) });
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(body).toContain('partial');
    expect(body).toContain('data: {"error":{"message":"upstream died"');
    expect(body).not.toContain('[DONE]');
    expect(outcome).toMatchObject({ cancelled: false, error: { status: 502 } });
  });

  it('ends with [DONE] and reports usage', async () => {
    async function* parts(): AsyncGenerator<StreamPart> {
      yield { type: 'text-delta', choice: 0, text: 'ok' };
      yield { type: 'finish', choice: 0, reason: 'stop' };
      yield { type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    }
    let outcome: any;
    const response = await createStreamResponse({ parts: parts(), renderer: renderer(), abortController: new AbortController(), onEnd: (value) => (outcome = value) });
    expect((await response.text()).endsWith('data: [DONE]\n\n')).toBe(true);
    expect(outcome.usage.total_tokens).toBe(2);
  });

  it('aborts the provider and stops the parts when the client cancels', async () => {
    const abortController = new AbortController();
    let stopped = false;
    async function* endless(): AsyncGenerator<StreamPart> {
      try {
        for (;;) {
          yield { type: 'text-delta', choice: 0, text: 'x' };
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      } finally {
        stopped = true;
      }
    }
    const response = await createStreamResponse({ parts: endless(), renderer: renderer(), abortController });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    expect(abortController.signal.aborted).toBe(true);
    expect(stopped).toBe(true);
  });
});

/** Just enough of Node's ServerResponse for writeStreamToNode, noting what happens in order. */
function fakeResponse(events: string[]): ServerResponse {
  const response = Object.assign(new EventEmitter(), {
    destroyed: false,
    writableFinished: false,
    writeHead: () => events.push('head'),
    cork: () => undefined,
    uncork: () => undefined,
    write: (text: string) => (events.push(`write ${text.trim().slice(0, 12)}`), true),
    end: (text?: string) => {
      events.push(`end ${text?.includes('[DONE]') ? '[DONE]' : (text ?? '').trim().slice(0, 12)}`);
      response.writableFinished = true;
      response.emit('finish');
    },
  });
  return response as unknown as ServerResponse;
}

describe('writeStreamToNode', () => {
  it('ends the request (its audit record) before [DONE] is released to the client', async () => {
    async function* parts(): AsyncGenerator<StreamPart> {
      yield { type: 'text-delta', choice: 0, text: 'ok' };
      yield { type: 'finish', choice: 0, reason: 'stop' };
      yield { type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    }
    const events: string[] = [];
    let outcome: StreamOutcome | undefined;
    const ended = new Promise<void>((resolve) => {
      const response = fakeResponse(events);
      response.once('finish', () => resolve());
      void writeStreamToNode(response, {
        parts: parts(),
        renderer: renderer(),
        abortController: new AbortController(),
        onEnd: (value) => {
          outcome = value;
          events.push('recorded');
        },
      });
    });
    await ended;
    expect(events.indexOf('recorded')).toBeGreaterThan(-1);
    expect(events.indexOf('recorded')).toBeLessThan(events.indexOf('end [DONE]'));
    expect(outcome?.usage?.total_tokens).toBe(2);
  });

  it('waits for an audit record that is queued asynchronously (redacted bodies) before [DONE]', async () => {
    async function* parts(): AsyncGenerator<StreamPart> {
      yield { type: 'text-delta', choice: 0, text: 'ok' };
      yield { type: 'finish', choice: 0, reason: 'stop' };
    }
    const events: string[] = [];
    const ended = new Promise<void>((resolve) => {
      const response = fakeResponse(events);
      response.once('finish', () => resolve());
      void writeStreamToNode(response, {
        parts: parts(),
        renderer: renderer(),
        abortController: new AbortController(),
        onEnd: async () => {
          await new Promise((settle) => setTimeout(settle, 30));
          events.push('recorded');
        },
      });
    });
    await ended;
    expect(events.indexOf('recorded')).toBeGreaterThan(-1);
    expect(events.indexOf('recorded')).toBeLessThan(events.indexOf('end [DONE]'));
  });
});
