import type { Context } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../app-env.js';
import { piiConfig, type ModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { EmbeddingRequest } from '../openai/embedding-request.js';
import { Pseudonymizer } from '../pii/index.js';
import type { ChatResult, StreamPart } from '../providers/spec.js';
import {
  applyChatPii,
  applyCompletionPii,
  applyEmbeddingPii,
  clientParts,
  maskAuditBody,
  PII_HEADER,
  PiiSession,
  resolvePiiPolicy,
  restoreChatResult,
  restoreCompletionResult,
  restoringParts,
} from './pii-policy.js';

const EMAIL = 'alice.martin@example.com';
const CARD = '4111 1111 1111 1111';

function fakeContext(keyPii?: string) {
  const variables = new Map<string, unknown>([['principal', { settings: keyPii ? { pii: keyPii } : {} }]]);
  const headers: Record<string, string> = {};
  const context = {
    get: (name: string) => variables.get(name),
    set: (name: string, value: unknown) => variables.set(name, value),
    header: (name: string, value: string) => (headers[name] = value),
  } as unknown as Context<AppEnv>;
  return { context, headers, variables };
}

const model = (pii?: ModelConfig['pii']) => ({ config: { name: 'm', provider: 'mock', pii } as unknown as ModelConfig });
const config = (policy: 'off' | 'mask' | 'pseudonymize' | 'block', extra: object = {}) => piiConfig.parse({ policy, ...extra });

function chatRequest(): ChatCompletionRequest {
  return {
    model: 'm',
    messages: [
      { role: 'system', content: 'Support desk.' },
      { role: 'user', content: `Write to ${EMAIL} about card ${CARD}.` },
      { role: 'user', content: [{ type: 'text', text: `Also cc ${EMAIL}` }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: JSON.stringify({ to: EMAIL, body: 'hi' }) } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: `sent to ${EMAIL}` },
      { role: 'function', name: 'lookup', content: `card ${CARD} is valid` },
    ],
  } as ChatCompletionRequest;
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

async function* from(parts: StreamPart[]): AsyncIterable<StreamPart> {
  yield* parts;
}

describe('resolvePiiPolicy: key over model over server', () => {
  it('follows the precedence', async () => {
    expect(resolvePiiPolicy(undefined, undefined, undefined)).toMatchObject({ policy: 'off', source: 'server' });
    expect(resolvePiiPolicy(config('mask'), { pii: undefined }, undefined)).toMatchObject({ policy: 'mask', source: 'server' });
    expect(resolvePiiPolicy(config('mask'), { pii: { policy: 'block' } }, undefined)).toMatchObject({ policy: 'block', source: 'model' });
    expect(resolvePiiPolicy(config('mask'), { pii: { policy: 'block' } }, 'default')).toMatchObject({ policy: 'block', source: 'model' });
    expect(resolvePiiPolicy(config('mask'), { pii: { policy: 'block' } }, 'pseudonymize')).toMatchObject({ policy: 'pseudonymize', source: 'key' });
    expect(resolvePiiPolicy(config('block'), { pii: { policy: 'block' } }, 'off')).toMatchObject({ policy: 'off', source: 'key' });
  });

  it('merges detector switches, model over server, and passes custom patterns and regions', async () => {
    const resolved = resolvePiiPolicy(
      config('mask', { detectors: { ip: false, phone: false }, phone_regions: ['DE'], custom: [{ name: 'emp', regex: 'EMP-\\d{6}', kind: 'employee_id' }] }),
      { pii: { detectors: { ip: true } } },
      undefined,
    );
    expect(resolved.options.detectors).toEqual({ ip: true, phone: false });
    expect(resolved.options.phoneRegions).toEqual(['DE']);
    expect(resolved.options.custom?.[0]?.kind).toBe('employee_id');
  });

  it('rejects bad config values with a clear message', async () => {
    expect(piiConfig.safeParse({ policy: 'redact' }).success).toBe(false);
    expect(piiConfig.safeParse({ phone_regions: ['XX'] }).success).toBe(false);
    expect(piiConfig.safeParse({ custom: [{ name: 'x', regex: '(', kind: 'x' }] }).success).toBe(false);
    expect(piiConfig.safeParse({ custom: [{ name: 'x', regex: 'a*', kind: 'x' }] }).success).toBe(false);
    expect(piiConfig.safeParse({ detectors: { names: true } }).success).toBe(false);
  });
});

describe('applyChatPii', () => {
  it('mask: every text, text part, tool-call argument, tool and function result; header and counts', async () => {
    const { context, headers, variables } = fakeContext();
    const request = chatRequest();
    await applyChatPii(context, { pii: config('mask') }, model(), request);
    const text = JSON.stringify(request);
    expect(text).not.toContain(EMAIL);
    expect(text).not.toContain(CARD);
    expect(request.messages[1]!.content).toBe('Write to [EMAIL_1] about card [CARD_1].');
    expect((request.messages[2]!.content as Array<{ text?: string }>)[0]!.text).toBe('Also cc [EMAIL_1]');
    const assistant = request.messages[3] as { tool_calls: Array<{ function: { arguments: string } }> };
    expect(JSON.parse(assistant.tool_calls[0]!.function.arguments)).toEqual({ to: '[EMAIL_1]', body: 'hi' });
    expect(request.messages[4]!.content).toBe('sent to [EMAIL_1]');
    expect(request.messages[5]!.content).toBe('card [CARD_1] is valid');
    expect(headers[PII_HEADER]).toBe('email=4,card=2');
    expect(variables.get('piiCounts')).toBe('email=4,card=2');
  });

  it('off: nothing scanned, no header', async () => {
    const { context, headers } = fakeContext();
    const request = chatRequest();
    await applyChatPii(context, { pii: config('off') }, model(), request);
    expect(JSON.stringify(request)).toContain(EMAIL);
    expect(headers[PII_HEADER]).toBeUndefined();
  });

  it('no PII found: no header', async () => {
    const { context, headers } = fakeContext();
    const request = { model: 'm', messages: [{ role: 'user', content: 'Order 2024-01-15 #12345, version 1.2.3' }] } as ChatCompletionRequest;
    await applyChatPii(context, { pii: config('block') }, model(), request);
    expect(headers[PII_HEADER]).toBeUndefined();
  });

  it('block: 400 pii_detected naming kinds and counts, never values', async () => {
    const { context } = fakeContext();
    const request = chatRequest();
    let error: unknown;
    try {
      await applyChatPii(context, { pii: config('block') }, model(), request);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(GatewayError);
    const body = (error as GatewayError).toBody();
    expect((error as GatewayError).status).toBe(400);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'pii_detected' });
    expect(body.error.message).toContain('email: 4, card: 2');
    expect(JSON.stringify(body)).not.toContain('alice');
    expect(JSON.stringify(body)).not.toContain('4111');
  });

  it('the key overrides the model', async () => {
    const { context } = fakeContext('off');
    const request = chatRequest();
    await applyChatPii(context, { pii: config('block') }, model({ policy: 'block' }), request);
    expect(JSON.stringify(request)).toContain(EMAIL);
  });

  it('the model overrides the server, with its detectors', async () => {
    const { context } = fakeContext();
    const request = chatRequest();
    await applyChatPii(context, { pii: config('off') }, model({ policy: 'mask', detectors: { card: false } }), request);
    expect(JSON.stringify(request)).not.toContain(EMAIL);
    expect(JSON.stringify(request)).toContain(CARD);
  });
});

describe('pseudonymize: restoring answers', () => {
  async function pseudonymized() {
    const { context, variables } = fakeContext();
    const request = chatRequest();
    await applyChatPii(context, { pii: config('pseudonymize') }, model(), request);
    return { context, session: variables.get('pii') as PiiSession };
  }

  it('restores text, refusals and tool-call arguments in a copy (the cached result keeps its placeholders)', async () => {
    const { context } = await pseudonymized();
    const result: ChatResult = {
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Mail [EMAIL_1], card [CARD_1], unknown [EMAIL_9].',
            refusal: null,
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'send', arguments: '{"to":"[EMAIL_1]"}' } }],
          },
          finishReason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    };
    const restored = await restoreChatResult(context, result);
    expect(restored.choices[0]!.message.content).toBe(`Mail ${EMAIL}, card ${CARD}, unknown [EMAIL_9].`);
    expect(JSON.parse(restored.choices[0]!.message.tool_calls![0]!.function.arguments)).toEqual({ to: EMAIL });
    expect(result.choices[0]!.message.content).toContain('[EMAIL_1]');
    expect(result.choices[0]!.message.tool_calls![0]!.function.arguments).toContain('[EMAIL_1]');
  });

  it('mask does not restore', async () => {
    const { context } = fakeContext();
    await applyCompletionPii(context, { pii: config('mask') }, model(), { model: 'm', prompt: `Hi ${EMAIL}` } as CompletionRequest);
    const result = { choices: [{ index: 0, text: '[EMAIL_1]', finishReason: 'stop' as const, logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    expect((await restoreCompletionResult(context, result)).choices[0]!.text).toBe('[EMAIL_1]');
    expect(clientParts(context, from([]))).not.toBeUndefined();
  });

  it('restores JSON-escaped values in tool-call arguments (a PEM key has newlines)', async () => {
    const session = new PiiSession('pseudonymize', {});
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----';
    const redacted = session.jsonText(JSON.stringify({ key, note: 'x' }));
    expect(redacted).not.toContain('BEGIN');
    const placeholder = (JSON.parse(redacted) as { key: string }).key;
    expect(JSON.parse(session.restoreJson(`{"k":"${placeholder}"}`))).toEqual({ k: key });
  });

  it('streams: placeholders split across text deltas and tool-call argument deltas, several choices', async () => {
    const { session } = await pseudonymized();
    const parts: StreamPart[] = [
      { type: 'role', choice: 0, content: '' },
      { type: 'text-delta', choice: 0, text: 'Write to [EM' },
      { type: 'text-delta', choice: 1, text: 'Card [' },
      { type: 'text-delta', choice: 0, text: 'AIL_' },
      { type: 'text-delta', choice: 1, text: 'CARD_1' },
      { type: 'text-delta', choice: 0, text: '1] now [' },
      { type: 'tool-call-delta', choice: 0, index: 0, id: 'call_a', name: 'send', argumentsDelta: '{"to":"[EMAIL' },
      { type: 'tool-call-delta', choice: 0, index: 1, id: 'call_b', name: 'charge', argumentsDelta: '{"card":"[CA' },
      { type: 'tool-call-delta', choice: 0, index: 0, argumentsDelta: '_1]"}' },
      { type: 'tool-call-delta', choice: 0, index: 1, argumentsDelta: 'RD_1]"}' },
      { type: 'finish', choice: 0, reason: 'tool_calls' },
      { type: 'text-delta', choice: 1, text: '] ok [CARD_' },
      { type: 'finish', choice: 1, reason: 'stop' },
      { type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } },
    ];
    const out = await collect(restoringParts(from(parts), session));
    const textOf = (choice: number) => out.flatMap((part) => (part.type === 'text-delta' && part.choice === choice ? [part.text] : [])).join('');
    const argsOf = (index: number) => out.flatMap((part) => (part.type === 'tool-call-delta' && part.index === index ? [part.argumentsDelta] : [])).join('');
    expect(textOf(0)).toBe(`Write to ${EMAIL} now [`);
    expect(textOf(1)).toBe(`Card ${CARD} ok [CARD_`);
    expect(JSON.parse(argsOf(0))).toEqual({ to: EMAIL });
    expect(JSON.parse(argsOf(1))).toEqual({ card: CARD });
    // Held text is flushed before its choice's finish; the finish and usage keep their places.
    const finish0 = out.findIndex((part) => part.type === 'finish' && part.choice === 0);
    expect(out.slice(finish0 + 1).some((part) => part.type === 'text-delta' && part.choice === 0)).toBe(false);
    expect(out.at(-1)?.type).toBe('usage');
    // First fragments keep their id and name.
    expect(out.filter((part) => part.type === 'tool-call-delta' && part.id !== undefined).map((part) => (part as { id: string }).id)).toEqual(['call_a', 'call_b']);
    // Nothing is held back beyond a possible partial placeholder.
    expect(out[1]).toMatchObject({ type: 'text-delta', choice: 0, text: 'Write to ' });
    expect(out.every((part) => part.type !== 'text-delta' || !part.text.includes('alice') || part.choice === 0)).toBe(true);
  });

  it('streams: every split of a placeholder restores', async () => {
    const { session } = await pseudonymized();
    const text = 'Hi [EMAIL_1], [CARD_1]!';
    for (let i = 1; i < text.length; i++) {
      for (let j = i + 1; j < text.length; j++) {
        const parts: StreamPart[] = [text.slice(0, i), text.slice(i, j), text.slice(j)].map((piece) => ({ type: 'text-delta', choice: 0, text: piece }));
        const out = await collect(restoringParts(from(parts), session));
        expect(out.map((part) => (part as { text: string }).text).join('')).toBe(`Hi ${EMAIL}, ${CARD}!`);
      }
    }
  });

  it('a stream that ends without finish still flushes', async () => {
    const { session } = await pseudonymized();
    const out = await collect(restoringParts(from([{ type: 'text-delta', choice: 0, text: 'end [EMAIL_' }]), session));
    expect(out.map((part) => (part as { text: string }).text).join('')).toBe('end [EMAIL_');
  });
});

describe('applyCompletionPii / applyEmbeddingPii', () => {
  it('masks string prompts and suffix, leaves token prompts', async () => {
    const { context, headers } = fakeContext();
    const request = { model: 'm', prompt: [`to ${EMAIL}`, 'plain'], suffix: `card ${CARD}` } as unknown as CompletionRequest;
    await applyCompletionPii(context, { pii: config('pseudonymize') }, model(), request);
    expect(request.prompt).toEqual(['to [EMAIL_1]', 'plain']);
    expect(request.suffix).toBe('card [CARD_1]');
    expect(headers[PII_HEADER]).toBe('email=1,card=1');
    const tokens = { model: 'm', prompt: [1, 2, 3] } as unknown as CompletionRequest;
    await applyCompletionPii(fakeContext().context, { pii: config('mask') }, model(), tokens);
    expect(tokens.prompt).toEqual([1, 2, 3]);
  });

  it('masks string embedding inputs; block refuses', async () => {
    const { context } = fakeContext();
    const request = { model: 'm', input: [`${EMAIL}`, 'nothing here'] } as unknown as EmbeddingRequest;
    await applyEmbeddingPii(context, { pii: config('pseudonymize') }, model(), request);
    expect(request.input).toEqual(['[EMAIL_1]', 'nothing here']);
    await expect(applyEmbeddingPii(fakeContext().context, { pii: config('block') }, model(), { model: 'm', input: EMAIL } as EmbeddingRequest)).rejects.toThrow(/email: 1/);
  });
});

describe('maskAuditBody', () => {
  it('masks JSON values (escapes cannot hide them) and plain text, with one placeholder map', async () => {
    const placeholders = new Pseudonymizer();
    const body = JSON.stringify({ messages: [{ role: 'user', content: `mail alice.martin\u0040example.com and ${CARD}` }] }).replace('@', '\\u0040');
    expect(body).not.toContain(EMAIL);
    const masked = (await maskAuditBody(body, {}, placeholders, 1000))!;
    expect(masked).not.toContain('alice');
    expect(masked).not.toContain('4111');
    expect(masked).toContain('[EMAIL_1]');
    expect((await maskAuditBody(`reply to ${EMAIL}`, {}, placeholders, 1000))).toBe('reply to [EMAIL_1]');
    expect((await maskAuditBody(null, {}, placeholders, 1000))).toBeNull();
  });

  it('cut bodies: a value across the cut is still masked', async () => {
    const body = `${'x '.repeat(50)}${EMAIL} ${'y '.repeat(200)}`;
    const masked = (await maskAuditBody(body, {}, new Pseudonymizer(), 105))!;
    expect(masked).not.toContain('alice');
  });
});
