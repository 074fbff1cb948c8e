import { describe, expect, it } from 'vitest';
import { routerModel, type RouterModelConfig } from '../config/schema.js';
import { GatewayError, invalidRequest } from '../errors/gateway-error.js';
import { upstreamHttpError, upstreamStreamError } from '../providers/openai-compatible/upstream-error.js';
import type { ChatResult, Provider, ProviderCall, StreamPart } from '../providers/spec.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import { RouterProvider } from './router-provider.js';

type Script = (call: ProviderCall) => Promise<ChatResult>;
type StreamScript = (call: ProviderCall) => AsyncIterable<StreamPart>;

const answer = (text: string): ChatResult => ({
  choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finishReason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
} as unknown as ChatResult);

function fakeProvider(chat: Script, stream?: StreamScript): Provider & { calls: number } {
  const provider = {
    calls: 0,
    capabilities: { vision: true, logprobs: true },
    chat: (_request: ChatCompletionRequest, call: ProviderCall) => {
      provider.calls++;
      return chat(call);
    },
    streamChat: (_request: ChatCompletionRequest, call: ProviderCall) => {
      provider.calls++;
      return (stream ?? (() => (async function* () {})()))(call);
    },
    complete: () => Promise.reject(new Error('unused')),
    streamComplete: () => (async function* () {})(),
  };
  return provider;
}

function router(config: Record<string, unknown>, providers: Record<string, Provider>, logs: unknown[] = []): RouterProvider {
  const model: RouterModelConfig = routerModel.parse({
    name: 'm',
    provider: 'router',
    targets: Object.keys(providers).map((id) => ({ id, provider: 'mock' })),
    retry: { base_delay_ms: 1, max_delay_ms: 5 },
    ...config,
  });
  const logger = { warn: (fields: unknown) => logs.push(fields), info: (fields: unknown) => logs.push(fields) } as never;
  return new RouterProvider({ model, providerFor: (target) => providers[target.id]!, logger });
}

const call = (): ProviderCall => ({ model: {} as never, signal: new AbortController().signal, requestId: 'req_1' });
const request = {} as ChatCompletionRequest;
const fail500 = () => Promise.reject(upstreamHttpError(500, {}, '{"error":{"message":"Internal error"}}', undefined));

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const list: StreamPart[] = [];
  for await (const part of parts) list.push(part);
  return list;
}

describe('RouterProvider', () => {
  it('falls back to the next target and names the one that answered', async () => {
    const primary = fakeProvider(fail500);
    const backup = fakeProvider(async () => answer('hi'));
    const result = await router({}, { primary, backup }).chat(request, call());
    expect(result.target).toBe('backup');
    expect(primary.calls).toBe(1);
  });

  it('retries a single target with backoff up to max_attempts', async () => {
    let calls = 0;
    const only = fakeProvider(async () => (++calls < 3 ? fail500() : answer('third time')));
    const result = await router({ retry: { max_attempts: 3, base_delay_ms: 1, max_delay_ms: 2 } }, { only }).chat(request, call());
    expect(result.target).toBe('only');
    expect(calls).toBe(3);
  });

  it("returns the client's own fault at once", async () => {
    const primary = fakeProvider(() => Promise.reject(invalidRequest('bad request', 'messages')));
    const backup = fakeProvider(async () => answer('hi'));
    await expect(router({}, { primary, backup }).chat(request, call())).rejects.toMatchObject({ status: 400, message: 'bad request' });
    expect(backup.calls).toBe(0);
  });

  it('aggregates the failures of every target', async () => {
    const limited = () => Promise.reject(upstreamHttpError(429, { 'retry-after': '60' }, '{"error":{"message":"Slow down"}}', undefined));
    const error = (await router({ retry: { max_attempts: 4, max_retry_after_ms: 1000 } }, { a: fakeProvider(limited), b: fakeProvider(limited) })
      .chat(request, call())
      .catch((caught: unknown) => caught)) as GatewayError;
    expect(error.status).toBe(429);
    expect(error.code).toBe('all_targets_failed');
    expect(error.message).toBe("All 2 targets of 'm' failed: a: upstream HTTP 429 (Slow down); b: upstream HTTP 429 (Slow down)");
    expect(error.headers['retry-after']).toBe('60');
  });

  it('honours a short retry-after before retrying the same target', async () => {
    let calls = 0;
    const started = Date.now();
    const only = fakeProvider(async () =>
      ++calls === 1 ? Promise.reject(upstreamHttpError(429, { 'retry-after-ms': '150' }, '', undefined)) : answer('ok'),
    );
    await router({}, { only }).chat(request, call());
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('times out a slow whole answer (total_ms) and moves on', async () => {
    const slow = fakeProvider((c) => new Promise((_resolve, reject) => c.signal.addEventListener('abort', () => reject(new Error('aborted')))));
    const fast = fakeProvider(async () => answer('fast'));
    const result = await router({ timeouts: { total_ms: 50 } }, { slow, fast }).chat(request, call());
    expect(result.target).toBe('fast');
  });

  it('streams: falls back before the first content part, not after', async () => {
    const hang: StreamScript = (c) =>
      (async function* () {
        yield { type: 'metadata', id: 'x' } as StreamPart;
        await new Promise((resolve) => c.signal.addEventListener('abort', resolve));
        throw new Error('aborted');
      })();
    const good: StreamScript = () =>
      (async function* () {
        yield { type: 'role', choice: 0, content: '' } as StreamPart;
        yield { type: 'text-delta', choice: 0, text: 'Hi' } as StreamPart;
        yield { type: 'finish', choice: 0, reason: 'stop' } as StreamPart;
      })();
    const parts = await collect(
      router({ timeouts: { first_token_ms: 50 } }, { primary: fakeProvider(fail500, hang), backup: fakeProvider(fail500, good) }).streamChat(request, call()),
    );
    expect(parts[0]).toEqual({ type: 'metadata', target: 'backup' });
    expect(parts.map((part) => part.type)).toEqual(['metadata', 'role', 'text-delta', 'finish']);

    const dies: StreamScript = () =>
      (async function* () {
        yield { type: 'text-delta', choice: 0, text: 'Hel' } as StreamPart;
        throw upstreamStreamError('The upstream connection failed mid-stream (ECONNRESET).');
      })();
    const backup = fakeProvider(fail500, good);
    await expect(collect(router({}, { primary: fakeProvider(fail500, dies), backup }).streamChat(request, call()))).rejects.toMatchObject({
      code: 'upstream_stream_error',
    });
    expect(backup.calls).toBe(0);
  });

  it('opens a circuit after repeated failures, skips it, probes it after the cooldown and closes it', async () => {
    let healthy = false;
    const logs: Array<Record<string, unknown>> = [];
    const flaky = fakeProvider(async () => (healthy ? answer('back') : fail500()));
    const backup = fakeProvider(async () => answer('backup'));
    const instance = router({ breaker: { failure_threshold: 2, cooldown_ms: 100 } }, { flaky, backup }, logs);
    await instance.chat(request, call());
    await instance.chat(request, call());
    expect(instance.targets[0]!.breaker.state).toBe('open');
    expect(logs).toContainEqual(expect.objectContaining({ target: 'flaky', from: 'closed', to: 'open' }));
    const before = flaky.calls;
    expect((await instance.chat(request, call())).target).toBe('backup');
    expect(flaky.calls).toBe(before);
    healthy = true;
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await instance.chat(request, call())).target).toBe('flaky');
    expect(instance.targets[0]!.breaker.state).toBe('closed');
    expect(logs).toContainEqual(expect.objectContaining({ target: 'flaky', from: 'half-open', to: 'closed' }));
  });

  it('still tries the target whose cooldown ends first when every circuit is open', async () => {
    let healthy = false;
    const only = fakeProvider(async () => (healthy ? answer('ok') : fail500()));
    const instance = router({ breaker: { failure_threshold: 1, cooldown_ms: 60_000 }, retry: { max_attempts: 1 } }, { only });
    await expect(instance.chat(request, call())).rejects.toMatchObject({ code: 'all_targets_failed' });
    expect(instance.targets[0]!.breaker.state).toBe('open');
    healthy = true;
    expect((await instance.chat(request, call())).target).toBe('only');
    expect(instance.targets[0]!.breaker.state).toBe('closed');
  });
});
