/**
 * Record and replay through the real server and the official SDK: `chatgate serve` records
 * against the fake upstream, the upstream goes away, and a second `chatgate serve` replays the
 * cassette (its base_url a closed port) with the same answers, byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeBehavior, type FakeUpstream, type RecordedRequest } from '../fixtures/fake-upstream.js';
import { CHATGATE_BIN, startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const upstreamKey = 'sk-upstream-secret-record-replay-7781';
const cassette = join(mkdtempSync(join(tmpdir(), 'chatgate-cassette-')), 'ci', 'cassette.jsonl');

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } } } } },
];
const chat = (content: string): OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming => ({
  model: 'gpt-4-turbo',
  messages: [{ role: 'user', content }],
});

function behaviorFor(request: RecordedRequest): FakeBehavior {
  const body = request.body ?? {};
  const messages = body['messages'] as Array<{ content?: unknown }> | undefined;
  if (messages?.[0]?.content === 'rate limit me') return { kind: 'error', status: 429 };
  if (body['tools'] !== undefined) return { kind: 'answer', toolCalls: [{ id: 'call_rr1', name: 'lookup', arguments: '{"query":"gateways"}' }] };
  return { kind: 'answer', text: 'Recorded answer with é and 漢字.', chunkDelayMs: 2 };
}

interface Observed {
  name: string;
  bytes: string;
}

/** The same SDK calls against a server; every raw body (and every parsed chunk) as text. */
async function scenario(client: OpenAI): Promise<Observed[]> {
  const observed: Observed[] = [];
  const raw = async (name: string, promise: { asResponse(): Promise<Response> }) => {
    const response = await promise.asResponse();
    observed.push({ name: `${name} (status)`, bytes: String(response.status) });
    observed.push({ name, bytes: Buffer.from(await response.arrayBuffer()).toString('hex') });
  };

  await raw('chat json', client.chat.completions.create(chat('Hello')));
  const { data: parsed } = await client.chat.completions.create(chat('Hello again')).withResponse();
  observed.push({ name: 'chat json (sdk)', bytes: JSON.stringify(parsed) });

  await raw('chat stream', client.chat.completions.create({ ...chat('Stream please'), stream: true, stream_options: { include_usage: true } }));
  const stream = await client.chat.completions.create({ ...chat('Stream again'), stream: true });
  const chunks: string[] = [];
  for await (const chunk of stream) chunks.push(JSON.stringify(chunk));
  observed.push({ name: 'chat stream chunks (sdk)', bytes: chunks.join('\n') });

  await raw('chat tools json', client.chat.completions.create({ ...chat('Use a tool'), tools }));
  const toolStream = client.chat.completions.stream({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'Use a tool, streamed' }], tools });
  const toolChunks: string[] = [];
  for await (const chunk of toolStream) toolChunks.push(JSON.stringify(chunk));
  observed.push({ name: 'chat tools stream chunks (sdk)', bytes: toolChunks.join('\n') });
  const final = await toolStream.finalChatCompletion();
  observed.push({ name: 'chat tools final tool call', bytes: JSON.stringify(final.choices[0]?.message.tool_calls) });

  await raw('completions', client.completions.create({ model: 'gpt-4-turbo', prompt: 'Say' }));
  await raw('completions stream', client.completions.create({ model: 'gpt-4-turbo', prompt: 'Say, streamed', stream: true }));

  await raw('embeddings float', client.embeddings.create({ model: 'gpt-4-turbo', input: ['one', 'two'], encoding_format: 'float' }));
  const embedding = await client.embeddings.create({ model: 'gpt-4-turbo', input: 'three' });
  observed.push({ name: 'embeddings (sdk, base64 on the wire)', bytes: JSON.stringify(embedding) });

  const limited = await client.chat.completions.create(chat('rate limit me')).catch((error: unknown) => error);
  if (!(limited instanceof OpenAI.APIError)) throw new Error('expected the recorded 429');
  observed.push({ name: 'recorded 429', bytes: JSON.stringify({ status: limited.status, error: limited.error, retryAfter: limited.headers?.get('retry-after') }) });
  return observed;
}

let upstream: FakeUpstream;
let recording: Observed[];
let cassetteText: string;
let upstreamRequests: number;
let replaying: RunningChatgate;

beforeAll(async () => {
  upstream = await startFakeUpstream({ behavior: behaviorFor });
  const recorder = await startChatgate({
    config: `
record_replay:
  mode: record
  file: ${cassette}
models:
  - name: gpt-4-turbo
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: \${UPSTREAM_API_KEY}
    model: upstream-model
`,
    environment: { UPSTREAM_API_KEY: upstreamKey },
  });
  try {
    expect(recorder.output()).toContain(`recording every upstream exchange to ${cassette}`);
    recording = await scenario(recorder.client());
  } finally {
    await recorder.stop();
  }
  upstreamRequests = upstream.requests.length;
  await upstream.close();
  cassetteText = readFileSync(cassette, 'utf8');

  // The replaying server: the upstream is gone and its base_url is a closed port; the mode comes from the environment.
  replaying = await startChatgate({
    config: `
models:
  - name: gpt-4-turbo
    provider: openai-compatible
    base_url: http://127.0.0.1:9/v1
    api_key: \${UPSTREAM_API_KEY}
    model: upstream-model
`,
    environment: { UPSTREAM_API_KEY: upstreamKey, CHATGATE_RECORD_REPLAY: 'replay', CHATGATE_CASSETTE: cassette },
  });
}, 120_000);

afterAll(async () => {
  await replaying?.stop();
  await upstream?.close();
});

describe('record and replay', () => {
  it('wrote one JSON line per upstream exchange, without the API key', () => {
    const lines = cassetteText.trim().split('\n');
    expect(lines).toHaveLength(upstreamRequests);
    const exchanges = lines.map((line) => JSON.parse(line) as { request: { path: string; headers: Record<string, string> }; response: { status: number; chunks: unknown[] } });
    expect(new Set(exchanges.map((exchange) => exchange.request.path))).toEqual(new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']));
    expect(exchanges.some((exchange) => exchange.response.status === 429)).toBe(true);
    expect(exchanges.some((exchange) => exchange.response.chunks.length > 3)).toBe(true);
    expect(cassetteText).not.toContain(upstreamKey);
    expect(cassetteText.toLowerCase()).not.toContain('authorization');
  });

  it('replays every answer byte for byte with no upstream', async () => {
    expect(replaying.output()).toContain(`replaying ${upstreamRequests} exchanges from ${cassette}`);
    const replayed = await scenario(replaying.client());
    expect(replayed.map((item) => item.name)).toEqual(recording.map((item) => item.name));
    // Streams too: the chunks carry the upstream's recorded id and created.
    replayed.forEach((item, position) => expect(item.bytes, item.name).toBe(recording[position]!.bytes));
  });

  it('answers a request that was never recorded with 502 replay_miss', async () => {
    const error = await replaying.client().chat.completions.create(chat('never recorded')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ status: 502, code: 'replay_miss' });
    expect((error as Error).message).toContain(cassette);
    expect((error as Error).message).toContain('CHATGATE_RECORD_REPLAY=record');
  });

  it('refuses to start on a missing or broken cassette, or a bad CHATGATE_RECORD_REPLAY', () => {
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-badcassette-'));
    const configPath = join(directory, 'chatgate.yaml');
    writeFileSync(configPath, 'models:\n  - name: m\n    provider: openai-compatible\n    base_url: http://127.0.0.1:9/v1\n');
    const broken = join(directory, 'broken.jsonl');
    writeFileSync(broken, '{"version":1}\nnot json\n');
    const run = (environment: Record<string, string>) =>
      spawnSync(process.execPath, [CHATGATE_BIN, 'serve', '--config', configPath, '--port', '0', '--data-dir', join(directory, 'data')], {
        encoding: 'utf8',
        timeout: 20_000,
        cwd: directory,
        env: { ...process.env, CHATGATE_MASTER_KEY: 'sk-test', ...environment },
      });
    const missing = run({ CHATGATE_RECORD_REPLAY: 'replay', CHATGATE_CASSETTE: 'nowhere.jsonl' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`${join(directory, 'nowhere.jsonl')} does not exist`);
    const bad = run({ CHATGATE_RECORD_REPLAY: 'replay', CHATGATE_CASSETTE: broken });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${broken}, line 1`);
    const badMode = run({ CHATGATE_RECORD_REPLAY: 'rewind' });
    expect(badMode.status).toBe(2);
    expect(badMode.stderr).toContain('CHATGATE_RECORD_REPLAY must be one of');
  });
});
