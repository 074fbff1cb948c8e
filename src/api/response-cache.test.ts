import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMasterKeyAuthenticator } from '../auth/key-authenticator.js';
import { tmpdir } from 'node:os';
import { cacheConfig, configSchema, mockModel } from '../config/schema.js';
import { ModelRegistry } from '../gateway/model-registry.js';
import { MemoryLimiter } from '../limits/memory-limiter.js';
import { createPriceTable } from '../pricing/price-table.js';
import { createMockProvider } from '../providers/mock/mock-provider.js';
import type { Provider } from '../providers/spec.js';
import type { AuditRecord } from '../storage/spec.js';
import { TokenCounters } from '../tokens/token-counter.js';
import { MemoryCacheBackend, type CacheBackend } from '../cache/cache-backends.js';
import { CacheConfigError, ResponseCache, createResponseCache } from '../cache/response-cache.js';

interface Harness {
  request(path: string, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  records: AuditRecord[];
  calls: { chat: number; stream: number; complete: number; embed: number };
}

function harness(options: { backend?: CacheBackend; semantic?: boolean; modelCache?: Record<string, unknown> } = {}): Harness {
  const tokenCounters = new TokenCounters();
  const mock = createMockProvider({ tokenCounters });
  const calls = { chat: 0, stream: 0, complete: 0, embed: 0 };
  const provider: Provider = {
    capabilities: mock.capabilities,
    chat: (request, call) => (calls.chat++, mock.chat(request, call)),
    streamChat: (request, call) => (calls.stream++, mock.streamChat(request, call)),
    complete: (request, call) => (calls.complete++, mock.complete(request, call)),
    streamComplete: (request, call) => (calls.stream++, mock.streamComplete(request, call)),
    embed: (request, call) => (calls.embed++, mock.embed!(request, call)),
  };
  const config = cacheConfig.parse({ enabled: true });
  const models = new ModelRegistry([
    {
      config: mockModel.parse({
        name: 'm',
        provider: 'mock',
        ...(options.semantic ? { cache: { semantic: { embedding_model: 'e', threshold: 0.95 } } } : {}),
        ...(options.modelCache ? { cache: options.modelCache } : {}),
      }),
      provider,
      created: 0,
    },
    { config: mockModel.parse({ name: 'e', provider: 'mock' }), provider, created: 0 },
  ]);
  const records: AuditRecord[] = [];
  const responseCache = new ResponseCache({ config, backend: options.backend ?? new MemoryCacheBackend({ maxEntries: 100 }), logger: pino({ level: 'silent' }), models });
  const app = createApp({
    models,
    tokenCounters,
    recorder: { record: (record) => records.push(record) },
    metering: { limiter: new MemoryLimiter(), prices: createPriceTable({ m: { input: 1, output: 2 } }) },
    auditBodies: false,
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 1_000_000,
    authenticator: createMasterKeyAuthenticator('sk-test'),
    corsOrigins: [],
    responseCache,
  });
  return {
    records,
    calls,
    request: (path, body, headers = {}) =>
      Promise.resolve(
        app.request(path, { method: 'POST', headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
      ),
  };
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'm', messages: [{ role: 'user', content }], temperature: 0, ...extra });

function sseChunks(text: string): Array<Record<string, any>> {
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('data: {'))
    .map((event) => JSON.parse(event.slice(6)));
}

describe('response cache (in process)', () => {
  it('serves the second identical request from the cache, at zero cost', async () => {
    const { request, records, calls } = harness();
    const first = await request('/v1/chat/completions', chat('Hello there'));
    expect(first.headers.get('x-chatgate-cache')).toBe('miss');
    const miss = (await first.json()) as Record<string, any>;
    const second = await request('/v1/chat/completions', chat('Hello there', { user: 'other', stream: false }));
    expect(second.headers.get('x-chatgate-cache')).toBe('hit');
    const hit = (await second.json()) as Record<string, any>;
    expect(calls.chat).toBe(1);
    expect(hit.choices).toEqual(miss.choices);
    expect(hit.id).not.toBe(miss.id);
    expect(hit.usage).toMatchObject({ prompt_tokens: miss.usage.prompt_tokens, completion_tokens: miss.usage.completion_tokens, prompt_tokens_details: { cached_tokens: miss.usage.prompt_tokens } });
    expect(records.map((record) => [record.cacheHit, record.costMicros === 0])).toEqual([
      [false, false],
      [true, true],
    ]);
  });

  it('replays a cached answer as a proper stream, equal to the live one', async () => {
    const { request, calls } = harness();
    const live = await (await request('/v1/chat/completions', chat('Stream me please', { stream: true, stream_options: { include_usage: true } }))).text();
    const replayed = await request('/v1/chat/completions', chat('Stream me please', { stream: true, stream_options: { include_usage: true } }));
    expect(replayed.headers.get('x-chatgate-cache')).toBe('hit');
    expect(replayed.headers.get('content-type')).toContain('text/event-stream');
    const replayedText = await replayed.text();
    expect(replayedText.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(calls.stream).toBe(1);
    const strip = (chunks: Array<Record<string, any>>) => chunks.map((chunk) => ({ choices: chunk.choices, usage: chunk.usage && { ...chunk.usage, prompt_tokens_details: undefined } }));
    const liveChunks = sseChunks(live);
    const replayedChunks = sseChunks(replayedText);
    expect(strip(replayedChunks)).toEqual(strip(liveChunks));
    expect(replayedChunks.at(-1)!.usage.prompt_tokens_details.cached_tokens).toBe(liveChunks.at(-1)!.usage.prompt_tokens);
    // A non-streamed request is served from the entry the stream stored.
    const whole = await request('/v1/chat/completions', chat('Stream me please'));
    expect(whole.headers.get('x-chatgate-cache')).toBe('hit');
    expect(calls.chat).toBe(0);
  });

  it('caches legacy completions, streamed and not', async () => {
    const { request, calls } = harness();
    const body = { model: 'm', prompt: 'Once upon a time', temperature: 0, max_tokens: 12 };
    const first = (await (await request('/v1/completions', body)).json()) as Record<string, any>;
    const second = await request('/v1/completions', { ...body, stream: true });
    expect(second.headers.get('x-chatgate-cache')).toBe('hit');
    const text = sseChunks(await second.text())
      .map((chunk) => chunk.choices[0]?.text ?? '')
      .join('');
    expect(text).toBe(first.choices[0].text);
    expect(calls.complete).toBe(1);
    expect(calls.stream).toBe(0);
  });

  it('honours bypass and refresh, and refuses an unknown header value', async () => {
    const { request, calls } = harness();
    expect((await request('/v1/chat/completions', chat('x'), { 'x-chatgate-cache': 'bypass' })).headers.get('x-chatgate-cache')).toBe('bypass');
    expect((await request('/v1/chat/completions', chat('x'))).headers.get('x-chatgate-cache')).toBe('miss');
    expect((await request('/v1/chat/completions', chat('x'), { 'x-chatgate-cache': 'refresh' })).headers.get('x-chatgate-cache')).toBe('miss');
    expect((await request('/v1/chat/completions', chat('x'))).headers.get('x-chatgate-cache')).toBe('hit');
    expect(calls.chat).toBe(3);
    const bad = await request('/v1/chat/completions', chat('x'), { 'x-chatgate-cache': 'sometimes' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_header', message: expect.stringContaining("'x-chatgate-cache'") } });
  });

  it('does not cache non-deterministic requests unless configured', async () => {
    const { request, calls } = harness();
    for (let index = 0; index < 2; index++) {
      const response = await request('/v1/chat/completions', chat('random', { temperature: 0.8 }));
      expect(response.headers.get('x-chatgate-cache')).toBe('bypass');
    }
    expect(calls.chat).toBe(2);
    expect((await request('/v1/chat/completions', chat('seeded', { temperature: 0.8, seed: 7 }))).headers.get('x-chatgate-cache')).toBe('miss');
    expect((await request('/v1/chat/completions', chat('seeded', { temperature: 0.8, seed: 7 }))).headers.get('x-chatgate-cache')).toBe('hit');

    const loose = harness({ modelCache: { deterministic_only: false } });
    await loose.request('/v1/chat/completions', chat('random', { temperature: 0.8 }));
    expect((await loose.request('/v1/chat/completions', chat('random', { temperature: 0.8 }))).headers.get('x-chatgate-cache')).toBe('hit');
    const off = harness({ modelCache: { enabled: false } });
    expect((await off.request('/v1/chat/completions', chat('x'))).headers.get('x-chatgate-cache')).toBeNull();
  });

  it('turns a failing back end into misses', async () => {
    const failing: CacheBackend = {
      name: 'redis',
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
      close: async () => {},
    };
    const { request, calls } = harness({ backend: failing });
    for (let index = 0; index < 2; index++) {
      const response = await request('/v1/chat/completions', chat('x', { stream: index === 1 }));
      expect(response.status).toBe(200);
      expect(response.headers.get('x-chatgate-cache')).toBe('miss');
      await response.text();
    }
    expect(calls.chat + calls.stream).toBe(2);
  });

  it('serves a semantic hit above the threshold and not a near miss', async () => {
    const { request, calls } = harness({ semantic: true });
    await request('/v1/chat/completions', chat('What is the capital of France?'));
    const similar = await request('/v1/chat/completions', chat('what is the capital of france'));
    expect(similar.headers.get('x-chatgate-cache')).toBe('hit');
    expect(Number(similar.headers.get('x-chatgate-cache-similarity'))).toBeGreaterThanOrEqual(0.95);
    const near = await request('/v1/chat/completions', chat('What is the capital of Spain?'));
    expect(near.headers.get('x-chatgate-cache')).toBe('miss');
    expect(calls.chat).toBe(2);
    expect(calls.embed).toBe(3);
  });

  it('answers a hit in well under a millisecond of server time', async () => {
    const { request, records } = harness();
    const body = chat('How fast is a cache hit?', { max_tokens: 50 });
    await request('/v1/chat/completions', body);
    for (let index = 0; index < 200; index++) await request('/v1/chat/completions', body); // warm up
    records.length = 0;
    const rounds = 2000;
    const started = performance.now();
    for (let index = 0; index < rounds; index++) await request('/v1/chat/completions', body);
    const perRequest = (performance.now() - started) / rounds;
    const durations = records.map((record) => record.durationMs).sort((a, b) => a - b);
    const median = durations[Math.floor(durations.length / 2)]!;
    const p99 = durations[Math.floor(durations.length * 0.99)]!;
    console.log(`cache hit server time over ${rounds} hits: median ${median} ms, p99 ${p99} ms (audit durationMs); whole app.request() round ${perRequest.toFixed(3)} ms`);
    expect(records.every((record) => record.cacheHit === true)).toBe(true);
    expect(median).toBeLessThan(0.8);
  });
});

describe('createResponseCache', () => {
  const logger = pino({ level: 'silent' });
  const setup = (raw: Record<string, unknown>) => {
    const config = configSchema.parse(raw);
    const tokenCounters = new TokenCounters();
    const provider = createMockProvider({ tokenCounters });
    const models = new ModelRegistry(config.models.map((model) => ({ config: model, provider, created: 0 })));
    return () => createResponseCache({ config, dataDirectory: tmpdir(), models, logger });
  };

  it('is off unless a model caches, and checks the semantic embedding model and the redis URL', async () => {
    expect(setup({ models: [{ name: 'm', provider: 'mock' }] })()).toBeNull();
    const on = setup({ cache: { enabled: true }, models: [{ name: 'm', provider: 'mock' }] })();
    expect(on?.backend.name).toBe('memory');
    await on?.close();
    expect(setup({ models: [{ name: 'm', provider: 'mock', cache: { semantic: { embedding_model: 'nope' } } }] })).toThrow(CacheConfigError);
    expect(setup({ cache: { enabled: true, backend: 'redis' }, models: [{ name: 'm', provider: 'mock' }] })).toThrow(/redis_url/);
    expect(() => configSchema.parse({ cache: { backend: 'disk' }, models: [{ name: 'm', provider: 'mock' }] })).toThrow();
    expect(() => configSchema.parse({ models: [{ name: 'm', provider: 'mock', cache: { semantic: { embedding_model: 'e', threshold: 2 } } }] })).toThrow();
  });
});
