import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../errors/gateway-error.js';
import { startFakeUpstream, type FakeUpstream } from '../../../test/fixtures/fake-upstream.js';
import { parseCassette } from './cassette.js';
import { RecordReplayClient, RecordReplayStore, type RecordReplaySettings } from './record-replay-client.js';
import { UpstreamRequestLifetime } from './request-lifetime.js';
import { UpstreamClient } from './upstream-client.js';

const secret = 'sk-recorded-secret-42';
const headers = ['content-type', 'application/json', 'authorization', `Bearer ${secret}`, 'x-request-id', 'req_1'];
const closedOrigin = 'http://127.0.0.1:9';

let upstream: FakeUpstream;
let directory: string;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  directory = mkdtempSync(join(tmpdir(), 'record-replay-'));
});
afterAll(async () => {
  await upstream.close();
});

function settings(mode: RecordReplaySettings['mode'], file: string, overrides: Partial<RecordReplaySettings> = {}): RecordReplaySettings {
  return { mode, file, match: 'body_and_path', replayTiming: false, ...overrides };
}

function lifetime(): UpstreamRequestLifetime {
  return new UpstreamRequestLifetime(new AbortController().signal, 10_000);
}

async function readChunks(client: RecordReplayClient, origin: string, body: string): Promise<{ status: number; chunks: Buffer[]; contentType: unknown }> {
  const response = await client.post(origin, '/v1/chat/completions', headers, body, lifetime());
  const chunks: Buffer[] = [];
  for await (const chunk of response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return { status: response.statusCode, chunks, contentType: response.headers['content-type'] };
}

describe('RecordReplayClient', () => {
  const euro = Buffer.from('€', 'utf8');
  const rawChunks = [Buffer.from('data: {"a":"'), euro.subarray(0, 1), Buffer.concat([euro.subarray(1), Buffer.from('"}\n\n')]), Buffer.from('data: [DONE]\n\n')];
  const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });

  it('records chunks byte for byte, then replays them with no upstream', async () => {
    const file = join(directory, 'bytes.jsonl');
    upstream.setBehavior({ kind: 'raw', headers: { 'content-type': 'text/event-stream', 'x-request-id': 'up_1', 'set-cookie': 'session=1' }, chunks: rawChunks, chunkDelayMs: 25 });
    const store = RecordReplayStore.open(settings('record', file));
    const recording = new RecordReplayClient(new UpstreamClient(), store);
    const recorded = await readChunks(recording, new URL(upstream.url).origin, body);
    await recording.close();
    upstream.reset();

    const lines = parseCassette(readFileSync(file, 'utf8'), file);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.request.headers).toEqual({ 'content-type': 'application/json' });
    expect(lines[0]!.response.headers).toEqual({ 'content-type': 'text/event-stream', 'x-request-id': 'up_1' });
    expect(lines[0]!.response.chunks.some((chunk) => 'base64' in chunk)).toBe(true);
    expect(readFileSync(file, 'utf8')).not.toContain(secret);

    const replaying = new RecordReplayClient(new UpstreamClient(), RecordReplayStore.open(settings('replay', file)));
    const replayed = await readChunks(replaying, closedOrigin, body);
    await replaying.close();
    expect(replayed.status).toBe(200);
    expect(replayed.contentType).toBe('text/event-stream');
    expect(Buffer.concat(replayed.chunks).equals(Buffer.concat(recorded.chunks))).toBe(true);
    expect(replayed.chunks.map((chunk) => chunk.toString('hex'))).toEqual(recorded.chunks.map((chunk) => chunk.toString('hex')));
  });

  it('replays with the recorded timing when asked', async () => {
    const file = join(directory, 'timing.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({
        version: 1,
        recorded_at: '2026-01-01T00:00:00Z',
        request: { method: 'POST', path: '/v1/chat/completions', headers: {}, body_sha256: '', body: JSON.parse(body) },
        response: { status: 200, headers: { 'content-type': 'text/event-stream' }, ms: 20, chunks: [{ ms: 0, text: 'a' }, { ms: 80, text: 'b' }] },
      })}\n`,
    );
    const client = new RecordReplayClient(new UpstreamClient(), RecordReplayStore.open(settings('replay', file, { replayTiming: true })));
    const started = performance.now();
    const replayed = await readChunks(client, closedOrigin, body);
    expect(Buffer.concat(replayed.chunks).toString()).toBe('ab');
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('answers a request with no recording with a 502 replay_miss naming the cassette', async () => {
    const file = join(directory, 'bytes.jsonl');
    const client = new RecordReplayClient(new UpstreamClient(), RecordReplayStore.open(settings('replay', file)));
    const error = await client.post(closedOrigin, '/v1/chat/completions', headers, '{"model":"other"}', lifetime()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 502, code: 'replay_miss' });
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('CHATGATE_RECORD_REPLAY=record');
  });

  it('replay_or_record goes upstream once, then replays', async () => {
    const file = join(directory, 'mixed.jsonl');
    upstream.setBehavior({ kind: 'answer', text: 'recorded once' });
    const client = new RecordReplayClient(new UpstreamClient(), RecordReplayStore.open(settings('replay_or_record', file)));
    const origin = new URL(upstream.url).origin;
    const plain = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    const texts: string[] = [];
    for (let count = 0; count < 3; count++) {
      const response = await client.post(origin, '/v1/chat/completions', headers, plain, lifetime());
      texts.push(await response.body.text());
    }
    await client.close();
    expect(upstream.requests).toHaveLength(1);
    expect(new Set(texts).size).toBe(1);
    expect(texts[0]).toContain('recorded once');
    expect(parseCassette(readFileSync(file, 'utf8'), file)).toHaveLength(1);
    upstream.reset();
  });

  it('redacts a secret the upstream echoes, even split between chunks', async () => {
    const file = join(directory, 'echo.jsonl');
    upstream.setBehavior({
      kind: 'raw',
      status: 401,
      headers: { 'content-type': 'application/json' },
      chunks: [`{"error":{"message":"Incorrect API key provided: ${secret.slice(0, 8)}`, `${secret.slice(8)}"}}`],
    });
    const client = new RecordReplayClient(new UpstreamClient(), RecordReplayStore.open(settings('record', file)));
    const response = await client.post(new URL(upstream.url).origin, '/v1/chat/completions', headers, `{"model":"m","note":"${secret}"}`, lifetime());
    expect(response.statusCode).toBe(401);
    await response.body.text();
    await client.close();
    upstream.reset();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(secret);
    expect(text).toContain('[REDACTED]');
  });
});
