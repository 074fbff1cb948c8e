/**
 * PII policies through the official SDK against a real `chatgate serve` in front of the fake
 * upstream, which records what it receives and echoes the user's text (placeholders included)
 * back: pseudonymize (JSON, streamed with placeholders split across chunks, a tool call whose
 * arguments hold a placeholder, a cached answer restored per request), mask, block, off, a
 * key's override, the `x-chatgate-pii` header, embeddings input, and audit bodies without raw
 * PII in `GET /admin/logs`.
 */
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeBehavior, type FakeUpstream, type RecordedRequest } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const MASTER = `sk-pii-${randomBytes(8).toString('hex')}`;
const EMAIL = 'jeanne.dupont@example.org';
const CARD = '4111 1111 1111 1111';
const CARD_DIGITS = '4111111111111111';
let upstream: FakeUpstream;
let chatgate: RunningChatgate;
let client: OpenAI;

function config(upstreamUrl: string): string {
  const model = (name: string, policy?: string, extra: string[] = []) => [
    `  - name: ${name}`,
    '    provider: openai-compatible',
    `    base_url: ${JSON.stringify(upstreamUrl)}`,
    '    model: upstream-model',
    ...(policy ? [`    pii: { policy: ${policy} }`] : []),
    ...extra,
  ];
  return [
    'audit:',
    '  bodies: true',
    'cache:',
    '  enabled: false',
    'pii:',
    '  policy: off',
    'models:',
    ...model('pseudo', 'pseudonymize'),
    ...model('pseudo-cached', 'pseudonymize', ['    cache: { enabled: true, deterministic_only: false }']),
    ...model('masked', 'mask'),
    ...model('blocked', 'block'),
    ...model('plain'),
    '',
  ].join('\n');
}

/** The text of the last user message of a recorded chat request. */
function lastUserText(request: RecordedRequest): string {
  const messages = (request.body?.['messages'] ?? []) as Array<{ role: string; content: unknown }>;
  const last = [...messages].reverse().find((message) => message.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

/** Answers by echoing the user's text; `tool` makes it a tool call whose arguments hold the first placeholder (or email) seen. */
function echo(request: RecordedRequest): FakeBehavior {
  const text = lastUserText(request);
  if (text.startsWith('TOOL ')) {
    const target = /\[EMAIL_\d+\]/.exec(text)?.[0] ?? /\S+@\S+/.exec(text)?.[0] ?? 'nobody';
    return { kind: 'answer', toolCalls: [{ id: 'call_pii', name: 'send_mail', arguments: JSON.stringify({ to: target, subject: 'Hello' }) }] };
  }
  if (text.startsWith('SPLIT ') && request.body?.['stream'] === true) {
    // The placeholder arrives split across three SSE chunks.
    const placeholder = /\[EMAIL_\d+\]/.exec(text)?.[0] ?? 'none';
    const pieces = ['Mail ', placeholder.slice(0, 3), placeholder.slice(3, 7), `${placeholder.slice(7)} today.`];
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-split', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'upstream-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    return {
      kind: 'raw',
      headers: { 'content-type': 'text/event-stream' },
      chunks: [chunk({ role: 'assistant', content: '' }, null), ...pieces.map((piece) => chunk({ content: piece }, null)), chunk({}, 'stop'), 'data: [DONE]\n\n'],
      chunkDelayMs: 5,
    };
  }
  return { kind: 'answer', text: `You said: ${text}` };
}

const sentUpstream = (from: number) => upstream.requests.slice(from).map((request) => request.rawBody).join('\n');

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}

beforeAll(async () => {
  upstream = await startFakeUpstream({ behavior: echo });
  chatgate = await startChatgate({ config: config(upstream.url), masterKey: MASTER });
  client = chatgate.client();
}, 60_000);

afterAll(async () => {
  await chatgate?.stop();
  await upstream?.close();
});

const prompt = `Please write to ${EMAIL} about the card ${CARD}.`;

describe('PII policies', () => {
  it('pseudonymize (JSON): the upstream never sees the email or card, the client gets them back; header names kinds and counts', async () => {
    const before = upstream.requests.length;
    const { data, response } = await client.chat.completions.create({ model: 'pseudo', messages: [{ role: 'user', content: prompt }] }).withResponse();
    const upstreamText = sentUpstream(before);
    expect(upstreamText).toContain('[EMAIL_1]');
    expect(upstreamText).toContain('[CARD_1]');
    expect(upstreamText).not.toContain(EMAIL);
    expect(upstreamText).not.toContain(CARD);
    expect(upstreamText).not.toContain(CARD_DIGITS);
    expect(data.choices[0]!.message.content).toBe(`You said: ${prompt}`);
    expect(response.headers.get('x-chatgate-pii')).toBe('email=1,card=1');
  });

  it('pseudonymize (streamed): originals back, also when a placeholder is split across chunks', async () => {
    const before = upstream.requests.length;
    const stream = await client.chat.completions.create({ model: 'pseudo', stream: true, messages: [{ role: 'user', content: prompt }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(`You said: ${prompt}`);

    const split = await client.chat.completions.create({ model: 'pseudo', stream: true, messages: [{ role: 'user', content: `SPLIT mail ${EMAIL}` }] });
    let splitText = '';
    for await (const chunk of split) splitText += chunk.choices[0]?.delta.content ?? '';
    expect(splitText).toBe(`Mail ${EMAIL} today.`);
    expect(sentUpstream(before)).not.toContain(EMAIL);
    expect(sentUpstream(before)).not.toContain(CARD);
  });

  it('pseudonymize: a tool call whose arguments hold a placeholder gets the original (JSON and streamed)', async () => {
    const before = upstream.requests.length;
    const body = {
      model: 'pseudo',
      messages: [{ role: 'user' as const, content: `TOOL send a mail to ${EMAIL}` }],
      tools: [{ type: 'function' as const, function: { name: 'send_mail', parameters: { type: 'object', properties: { to: { type: 'string' } } } } }],
    };
    const completion = await client.chat.completions.create(body);
    const call = completion.choices[0]!.message.tool_calls![0]! as { function: { arguments: string } };
    expect(JSON.parse(call.function.arguments)).toEqual({ to: EMAIL, subject: 'Hello' });

    const stream = await client.chat.completions.create({ ...body, stream: true });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    expect(JSON.parse(args)).toEqual({ to: EMAIL, subject: 'Hello' });

    // A follow-up turn: the assistant's tool call and the tool result are redacted upstream too.
    await client.chat.completions.create({
      model: 'pseudo',
      messages: [
        { role: 'user', content: 'Mail my friend.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: JSON.stringify({ to: EMAIL }) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: `Sent to ${EMAIL}, charged ${CARD}.` },
      ],
    });
    expect(sentUpstream(before)).not.toContain(EMAIL);
    expect(sentUpstream(before)).not.toContain(CARD);
  });

  it('pseudonymize with the response cache: stored with placeholders, restored per request', async () => {
    const other = 'marc.lefevre@example.net';
    const first = await client.chat.completions.create({ model: 'pseudo-cached', messages: [{ role: 'user', content: `Cache test for ${EMAIL}` }] });
    expect(first.choices[0]!.message.content).toBe(`You said: Cache test for ${EMAIL}`);
    // Another person's address makes the same redacted request: a hit, restored with this request's value.
    const { data, response } = await client.chat.completions.create({ model: 'pseudo-cached', messages: [{ role: 'user', content: `Cache test for ${other}` }] }).withResponse();
    expect(response.headers.get('x-chatgate-cache')).toBe('hit');
    expect(data.choices[0]!.message.content).toBe(`You said: Cache test for ${other}`);
    const stream = await client.chat.completions.create({ model: 'pseudo-cached', stream: true, messages: [{ role: 'user', content: `Cache test for ${other}` }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(`You said: Cache test for ${other}`);
  });

  it('mask: placeholders go upstream and stay in the answer', async () => {
    const before = upstream.requests.length;
    const { data, response } = await client.chat.completions.create({ model: 'masked', messages: [{ role: 'user', content: prompt }] }).withResponse();
    expect(sentUpstream(before)).not.toContain(EMAIL);
    expect(data.choices[0]!.message.content).toBe('You said: Please write to [EMAIL_1] about the card [CARD_1].');
    expect(response.headers.get('x-chatgate-pii')).toBe('email=1,card=1');

    const legacy = await client.completions.create({ model: 'masked', prompt: `Reply to ${EMAIL}` });
    expect(sentUpstream(before)).not.toContain(EMAIL);
    expect(legacy.choices[0]!.text).not.toContain(EMAIL);
  });

  it('block: 400 pii_detected naming kinds and counts, never the values; nothing goes upstream', async () => {
    const before = upstream.requests.length;
    const error = await client.chat.completions.create({ model: 'blocked', messages: [{ role: 'user', content: prompt }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const bad = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(bad.status).toBe(400);
    expect(bad.code).toBe('pii_detected');
    expect(bad.type).toBe('invalid_request_error');
    expect(bad.message).toMatch(/email: 1, card: 1/);
    expect(bad.message).not.toContain(EMAIL);
    expect(bad.message).not.toContain('4111');
    expect(upstream.requests.length).toBe(before);
    // Without PII the same model answers.
    await expect(client.chat.completions.create({ model: 'blocked', messages: [{ role: 'user', content: 'Order 2024-01-15 #A1234' }] })).resolves.toBeTruthy();
  });

  it('off: the request goes upstream unchanged, no header', async () => {
    const before = upstream.requests.length;
    const { data, response } = await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: prompt }] }).withResponse();
    expect(sentUpstream(before)).toContain(EMAIL);
    expect(data.choices[0]!.message.content).toBe(`You said: ${prompt}`);
    expect(response.headers.get('x-chatgate-pii')).toBeNull();
  });

  it("a key's pii setting overrides the model's", async () => {
    const created = await admin('POST', '/keys', { name: 'pii-off', pii: 'off' });
    expect(created.status).toBe(201);
    expect(created.json.pii).toBe('off');
    const offClient = new OpenAI({ baseURL: chatgate.url, apiKey: created.json.secret, maxRetries: 0 });
    await expect(offClient.chat.completions.create({ model: 'blocked', messages: [{ role: 'user', content: prompt }] })).resolves.toBeTruthy();

    const before = upstream.requests.length;
    const updated = await admin('PATCH', `/keys/${created.json.id}`, { pii: 'pseudonymize' });
    expect(updated.json.pii).toBe('pseudonymize');
    let answer = '';
    for (let attempt = 0; attempt < 40; attempt++) {
      // Other instances' key caches see changes within a second; this one at once, but be patient.
      const completion = await offClient.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: prompt }] });
      answer = completion.choices[0]!.message.content ?? '';
      if (!upstream.requests.at(-1)!.rawBody.includes(EMAIL)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(upstream.requests.at(-1)!.rawBody).not.toContain(EMAIL);
    expect(answer).toBe(`You said: ${prompt}`);
    expect(upstream.requests.length).toBeGreaterThan(before);

    expect((await admin('PATCH', `/keys/${created.json.id}`, { pii: 'sometimes' })).status).toBe(400);
  });

  it('embeddings: string inputs are masked before they go upstream', async () => {
    const before = upstream.requests.length;
    const { response } = await client.embeddings.create({ model: 'pseudo', input: [`contact ${EMAIL}`, 'no personal data'] }).withResponse();
    const sent = upstream.requests.slice(before).find((request) => request.path.startsWith('/v1/embeddings'));
    expect(sent?.body?.['input']).toEqual(['contact [EMAIL_1]', 'no personal data']);
    expect(response.headers.get('x-chatgate-pii')).toBe('email=1');
  });

  it('the audit log holds no raw email or card in bodies, whatever the policy, and records the counts', async () => {
    let data: any[] = [];
    for (let attempt = 0; attempt < 60; attempt++) {
      data = (await admin('GET', '/logs?limit=200')).json.data as any[];
      if (data.some((record) => record.model === 'plain' && record.request_body !== null)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const chats = data.filter((record) => record.path === '/v1/chat/completions');
    expect(chats.length).toBeGreaterThan(5);
    const bodies = data.map((record) => `${record.request_body ?? ''}\n${record.response_body ?? ''}`).join('\n');
    expect(bodies).toContain('[EMAIL_1]');
    expect(bodies).not.toContain(EMAIL);
    expect(bodies).not.toContain(CARD);
    expect(bodies).not.toContain(CARD_DIGITS);
    expect(bodies).not.toContain('jeanne');
    expect(data.some((record) => record.model === 'pseudo' && record.pii === 'email=1,card=1')).toBe(true);
    expect(data.some((record) => record.model === 'blocked' && record.status === 400 && record.pii === 'email=1,card=1' && record.error_code === 'pii_detected')).toBe(true);
    // Off scans nothing for the request: no counts, but its audited bodies are still masked.
    expect(data.filter((record) => record.model === 'plain' && record.key_id === 'master').every((record) => record.pii === null)).toBe(true);
    const verified = await admin('GET', '/audit/verify');
    expect(verified.json).toMatchObject({ ok: true });
  });
});
