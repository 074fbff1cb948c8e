import { describe, expect, it } from 'vitest';
import { routerModel } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { ChatResult, Provider, ProviderCall } from '../providers/spec.js';
import { RouterProvider } from './router-provider.js';
import { chatFeatures, decideRoute, type Classify } from './task-routing.js';

const signal = new AbortController().signal;
const policy = (extra: Record<string, unknown> = {}) =>
  routerModel.parse({
    name: 'm',
    provider: 'router',
    targets: [
      { id: 'cheap', provider: 'mock' },
      { id: 'strong', provider: 'mock' },
      { id: 'vision', provider: 'mock' },
    ],
    routing: {
      rules: [
        { when: { images: true }, targets: ['vision'] },
        { when: { tools: true }, targets: ['strong'] },
        { when: { json: true }, targets: ['strong'] },
        { when: { min_prompt_tokens: 1000 }, targets: ['strong', 'cheap'] },
      ],
      default: ['cheap'],
      ...extra,
    },
  });

const chat = (extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({ model: 'm', messages: [{ role: 'user', content: 'Hello there' }], ...extra });

describe('decideRoute', () => {
  it('takes the first matching rule, else the default', async () => {
    const routing = policy().routing!;
    const decide = (request: ChatCompletionRequest, tokens = 10) => decideRoute(routing, chatFeatures(request, tokens), undefined, signal);
    expect(await decide(chat())).toEqual({ targetIds: ['cheap'], reason: 'default' });
    expect(await decide(chat({ tools: [{ type: 'function', function: { name: 'f' } }] }))).toMatchObject({ targetIds: ['strong'], reason: 'rule 2 (tools)' });
    expect(await decide(chat({ response_format: { type: 'json_object' } }))).toMatchObject({ targetIds: ['strong'] });
    expect(await decide(chat(), 5000)).toMatchObject({ targetIds: ['strong', 'cheap'], reason: 'rule 4 (min_prompt_tokens 1000)' });
    const image = chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'what?' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] }], tools: [{ type: 'function', function: { name: 'f' } }] });
    expect(await decide(image)).toMatchObject({ targetIds: ['vision'], reason: 'rule 1 (images)' });
  });

  it('asks the classifier when no rule matches, falling back to the default when it cannot say', async () => {
    const routing = policy({ rules: [], classifier: { model: 'small', labels: { simple: ['cheap'], complex: ['strong'] } } }).routing!;
    const seen: string[][] = [];
    const complex: Classify = async (features, labels) => {
      seen.push(labels);
      return features.lastUserText.includes('prove') ? 'complex' : 'simple';
    };
    expect(await decideRoute(routing, chatFeatures(chat({ messages: [{ role: 'user', content: 'prove the theorem' }] }), 5), complex, signal)).toEqual({ targetIds: ['strong'], reason: 'classifier: complex' });
    expect(await decideRoute(routing, chatFeatures(chat(), 5), complex, signal)).toEqual({ targetIds: ['cheap'], reason: 'classifier: simple' });
    expect(seen[0]).toEqual(['simple', 'complex']);
    const broken: Classify = async () => {
      throw new Error('classifier down');
    };
    expect(await decideRoute(routing, chatFeatures(chat(), 5), broken, signal)).toEqual({ targetIds: ['cheap'], reason: 'default' });
    const unknownLabel: Classify = async () => 'medium';
    expect(await decideRoute(routing, chatFeatures(chat(), 5), unknownLabel, signal)).toEqual({ targetIds: ['cheap'], reason: 'default' });
  });

  it('is validated: unknown target ids and a classifier naming the router itself are config errors', () => {
    expect(() => policy({ default: ['nowhere'] })).toThrow(/no target has the id 'nowhere'/);
    expect(() => policy({ classifier: { model: 'm', labels: { simple: ['cheap'] } } })).toThrow(/another model/);
  });
});

function provider(name: string, calls: string[]): Provider {
  const result = { choices: [{ index: 0, message: { role: 'assistant', content: name, refusal: null }, finishReason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } } as unknown as ChatResult;
  return {
    capabilities: { vision: true, logprobs: true },
    chat: async () => {
      calls.push(name);
      if (name === 'strong-down') throw new GatewayError({ status: 503, type: 'server_error', message: 'Upstream error (HTTP 503): down', source: 'upstream' });
      return result;
    },
    streamChat: () => (async function* () {})(),
    complete: () => Promise.reject(new Error('unused')),
    streamComplete: () => (async function* () {})(),
  };
}

describe('RouterProvider with routing by task', () => {
  const call = (): ProviderCall => ({ model: {} as never, signal, requestId: 'req' });

  it('sends each request to the targets its rule prefers, the others following as fallbacks unless exclusive', async () => {
    const calls: string[] = [];
    const model = policy();
    const routed = new RouterProvider({ model, providerFor: (target) => provider(target.id, calls), countChat: () => 10 });
    expect((await routed.chat(chat(), call())).target).toBe('cheap');
    expect((await routed.chat(chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), call())).target).toBe('strong');
    expect(calls).toEqual(['cheap', 'strong']);

    const failing = new RouterProvider({
      model: routerModel.parse({ ...model, targets: [{ id: 'cheap', provider: 'mock' }, { id: 'strong', provider: 'mock' }, { id: 'vision', provider: 'mock' }], retry: { base_delay_ms: 1, max_delay_ms: 2 } }),
      providerFor: (target) => provider(target.id === 'strong' ? 'strong-down' : target.id, calls),
      countChat: () => 10,
    });
    calls.length = 0;
    const fellBack = await failing.chat(chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), call());
    expect(calls[0]).toBe('strong-down');
    expect(fellBack.target).not.toBe('strong');

    const exclusive = new RouterProvider({
      model: routerModel.parse({ ...model, routing: { ...model.routing, exclusive: true }, retry: { max_attempts: 2, base_delay_ms: 1, max_delay_ms: 2 } }),
      providerFor: (target) => provider(target.id === 'strong' ? 'strong-down' : target.id, calls),
      countChat: () => 10,
    });
    calls.length = 0;
    await expect(exclusive.chat(chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), call())).rejects.toMatchObject({ code: 'all_targets_failed' });
    expect(new Set(calls)).toEqual(new Set(['strong-down']));
  });

  it('counts a prompt for its length rules without blocking, only as far as the largest threshold', async () => {
    const calls: string[] = [];
    const limits: number[] = [];
    const routed = new RouterProvider({
      model: policy(),
      providerFor: (target) => provider(target.id, calls),
      // A counter that stops past its limit, as TokenCounter.countChatAsync does.
      countChat: async (_request, limit) => {
        limits.push(limit);
        await new Promise((resolve) => setImmediate(resolve));
        return limit + 1;
      },
    });
    expect((await routed.chat(chat(), call())).target).toBe('strong');
    expect(limits).toEqual([1000]);

    const unruled = new RouterProvider({
      model: policy({ rules: [{ when: { tools: true }, targets: ['strong'] }] }),
      providerFor: (target) => provider(target.id, calls),
      countChat: () => {
        throw new Error('no rule on prompt length: nothing to count');
      },
    });
    expect((await unruled.chat(chat(), call())).target).toBe('cheap');
  });
});
