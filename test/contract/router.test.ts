/**
 * Router models through the real server and the official SDK (maxRetries: 0, so that the SDK
 * masks nothing): two fake upstreams on loopback as targets, the primary failing in every way
 * an upstream fails, the backup answering.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeBehavior, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

let primary: FakeUpstream;
let backup: FakeUpstream;
let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  primary = await startFakeUpstream();
  backup = await startFakeUpstream();
  const targets = `
    targets:
      - id: primary
        provider: openai-compatible
        base_url: ${primary.url}
        model: primary-model
      - id: backup
        provider: openai-compatible
        base_url: ${backup.url}
        model: backup-model`;
  chatgate = await startChatgate({
    config: `
models:
  - name: gpt-4-turbo
    provider: router
    retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 50 }
    timeouts: { first_token_ms: 800, total_ms: 2000 }
    breaker: { failure_threshold: 100 }
${targets}
  - name: breaker-model
    provider: router
    retry: { max_attempts: 2, base_delay_ms: 10, max_delay_ms: 50 }
    breaker: { failure_threshold: 2, cooldown_ms: 1000 }
${targets}
`,
  });
  client = chatgate.client();
});
afterAll(async () => {
  await chatgate?.stop();
  await primary?.close();
  await backup?.close();
});
beforeEach(() => {
  primary.reset();
  backup.reset();
  primary.setBehavior({ kind: 'answer', text: 'Hello from the primary.' });
  backup.setBehavior({ kind: 'answer', text: 'Hello from the backup.' });
});

const hello = { model: 'gpt-4-turbo', messages: [{ role: 'user' as const, content: 'Hello' }] };

async function chat(model = 'gpt-4-turbo') {
  const { data, response } = await client.chat.completions.create({ ...hello, model }).withResponse();
  return { text: data.choices[0]?.message.content, target: response.headers.get('x-chatgate-target') };
}

async function streamChat(model = 'gpt-4-turbo') {
  const { data, response } = await client.chat.completions.create({ ...hello, model, stream: true }).withResponse();
  let text = '';
  for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
  return { text, target: response.headers.get('x-chatgate-target') };
}

/** The server's log is written asynchronously: wait for a line. */
async function waitForOutput(pattern: RegExp): Promise<void> {
  for (let waited = 0; waited < 5000 && !pattern.test(chatgate.output()); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(chatgate.output()).toMatch(pattern);
}

function metricsUrl(): string {
  return `${chatgate.url.replace(/\/v1$/, '')}/metrics`;
}

async function metrics(): Promise<string> {
  const response = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${chatgate.key}` } });
  expect(response.status).toBe(200);
  return response.text();
}

/** Each way the primary fails before the first byte, for a whole answer and for a stream. */
const failures: Array<{ name: string; whole: FakeBehavior; stream: FakeBehavior }> = [
  { name: 'HTTP 500', whole: { kind: 'error', status: 500 }, stream: { kind: 'error', status: 500 } },
  {
    name: '429 with retry-after',
    whole: { kind: 'error', status: 429, headers: { 'retry-after': '20' } },
    stream: { kind: 'error', status: 429, headers: { 'retry-after': '20' } },
  },
  { name: 'connection reset', whole: { kind: 'reset' }, stream: { kind: 'reset' } },
  { name: 'hang (no answer at all)', whole: { kind: 'hang' }, stream: { kind: 'hang' } },
  {
    name: 'slow first byte beyond the timeout',
    whole: { kind: 'answer', delayMs: 4000 },
    stream: { kind: 'answer', firstChunkDelayMs: 4000 },
  },
  {
    name: 'malformed answer',
    whole: { kind: 'raw', status: 200, headers: { 'content-type': 'application/json' }, chunks: ['{"id": "broken'] },
    stream: { kind: 'malformed-stream', afterChunks: 0 },
  },
  {
    name: 'hang after the headers and the role chunk',
    whole: { kind: 'stream-dies', afterChunks: 1 },
    stream: { kind: 'hang', afterChunks: 1 },
  },
];

describe('router: one target failing, the other answering', () => {
  for (const failure of failures) {
    it(`${failure.name}: a whole answer comes from the backup`, async () => {
      primary.enqueue(failure.whole);
      const answer = await chat();
      expect(answer).toEqual({ text: 'Hello from the backup.', target: 'backup' });
      expect(primary.requests).toHaveLength(1);
      expect(backup.requests[0]?.body?.['model']).toBe('backup-model');
    });

    it(`${failure.name}: a stream comes from the backup`, async () => {
      primary.enqueue(failure.stream);
      const answer = await streamChat();
      expect(answer).toEqual({ text: 'Hello from the backup.', target: 'backup' });
      expect(primary.requests).toHaveLength(1);
    });
  }

  it('a stream that dies after its first bytes reaches the client as an SSE error frame', async () => {
    primary.enqueue({ kind: 'stream-dies', afterChunks: 3, text: 'one two three four five' });
    const { data, response } = await client.chat.completions.create({ ...hello, stream: true }).withResponse();
    expect(response.headers.get('x-chatgate-target')).toBe('primary');
    let text = '';
    const failure = await (async () => {
      for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((error: unknown) => error);
    expect(text).toBe('one two');
    expect(failure).toBeInstanceOf(Error);
    expect(String((failure as Error).message)).toMatch(/mid-stream|connection/i);
    expect(backup.requests).toHaveLength(0);
  });

  it("names the serving target in the audit record's provider field", async () => {
    primary.enqueue({ kind: 'error', status: 500 });
    await client.chat.completions.create({ ...hello, user: 'audit-target-check' });
    let provider: unknown;
    for (let waited = 0; waited < 5000 && provider === undefined; waited += 100) {
      const response = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/logs?user=audit-target-check&limit=1`, {
        headers: { authorization: `Bearer ${chatgate.key}` },
      });
      const body = (await response.json()) as { data: Array<{ provider: unknown }> };
      provider = body.data[0]?.provider;
      if (provider === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(provider).toBe('backup');
  });

  it('serves from the primary when it is healthy, naming it in x-chatgate-target', async () => {
    expect(await chat()).toEqual({ text: 'Hello from the primary.', target: 'primary' });
    expect(await streamChat()).toEqual({ text: 'Hello from the primary.', target: 'primary' });
    expect(primary.requests[0]?.body?.['model']).toBe('primary-model');
  });

  it('routes legacy completions and embeddings the same way', async () => {
    primary.enqueue({ kind: 'error', status: 500 }, { kind: 'reset' }, { kind: 'error', status: 502 });
    const { data: completion, response } = await client.completions.create({ model: 'gpt-4-turbo', prompt: 'Say hi' }).withResponse();
    expect(completion.choices[0]?.text).toBe('Hello from the backup.');
    expect(response.headers.get('x-chatgate-target')).toBe('backup');
    const stream = await client.completions.create({ model: 'gpt-4-turbo', prompt: 'Say hi', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe('Hello from the backup.');
    const { data: embeddings, response: embeddingResponse } = await client.embeddings.create({ model: 'gpt-4-turbo', input: 'hello' }).withResponse();
    expect(embeddings.data[0]?.embedding.length).toBeGreaterThan(0);
    expect(embeddingResponse.headers.get('x-chatgate-target')).toBe('backup');
    expect(primary.requests).toHaveLength(3);
  });

  it('returns a client error (4xx) as is, without trying the backup', async () => {
    primary.enqueue({ kind: 'error', status: 400, error: { message: 'Bad messages (fake).', param: 'messages' } });
    const error = await chat().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('Bad messages (fake).');
    expect(backup.requests).toHaveLength(0);
  });
});

describe('router: every target failing', () => {
  it('answers one error naming each target and why', async () => {
    primary.setBehavior({ kind: 'error', status: 500, error: { message: 'Internal error' } });
    backup.setBehavior({ kind: 'error', status: 503, error: { message: 'Overloaded' } });
    const error = (await chat().catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.status).toBe(502);
    expect(error.code).toBe('all_targets_failed');
    expect(error.message).toContain(
      "All 2 targets of 'gpt-4-turbo' failed: primary: upstream HTTP 500 (Internal error); backup: upstream HTTP 503 (Overloaded)",
    );
    const streamError = (await streamChat().catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(streamError.status).toBe(502);
    expect(streamError.code).toBe('all_targets_failed');
  });

  it('is a 429 with retry-after when every target is rate limited', async () => {
    primary.setBehavior({ kind: 'error', status: 429, headers: { 'retry-after': '40', 'retry-after-ms': '40000' } });
    backup.setBehavior({ kind: 'error', status: 429, headers: { 'retry-after': '50', 'retry-after-ms': '50000' } });
    const error = (await chat().catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.headers?.get('retry-after')).toBe('40');
    expect(primary.requests).toHaveLength(1);
  });
});

describe('router: circuit breaker', () => {
  it('opens after repeated failures (metrics and log), skips the target, and closes after a successful probe', async () => {
    primary.setBehavior({ kind: 'error', status: 500 });
    expect((await chat('breaker-model')).target).toBe('backup');
    expect((await chat('breaker-model')).target).toBe('backup');
    expect(primary.requests).toHaveLength(2);

    let text = await metrics();
    expect(text).toContain('chatgate_circuit_state{model="breaker-model",target="primary"} 2');
    expect(text).toContain('chatgate_circuit_transitions_total{model="breaker-model",target="primary",to="open"} 1');
    expect(text).toMatch(/chatgate_target_requests_total\{model="breaker-model",target="primary",outcome="error"\} 2/);
    expect(text).toContain('chatgate_target_latency_seconds_bucket');
    await waitForOutput(/"model":"breaker-model","target":"primary","from":"closed","to":"open"/);

    // Open: the primary is not even tried.
    expect((await streamChat('breaker-model')).target).toBe('backup');
    expect(primary.requests).toHaveLength(2);

    // After the cooldown, one probe goes through; it succeeds and closes the circuit.
    primary.setBehavior({ kind: 'answer', text: 'Hello from the primary.' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await chat('breaker-model')).toEqual({ text: 'Hello from the primary.', target: 'primary' });
    text = await metrics();
    expect(text).toContain('chatgate_circuit_state{model="breaker-model",target="primary"} 0');
    expect(text).toContain('chatgate_circuit_transitions_total{model="breaker-model",target="primary",to="half-open"} 1');
    expect(text).toContain('chatgate_circuit_transitions_total{model="breaker-model",target="primary",to="closed"} 1');
    await waitForOutput(/"model":"breaker-model","target":"primary","from":"half-open","to":"closed"/);
  });

  it('GET /metrics needs the master key (or an admin key)', async () => {
    expect((await fetch(metricsUrl())).status).toBe(401);
    const response = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${chatgate.key}` } });
    expect(response.headers.get('content-type')).toContain('text/plain');
  });
});
