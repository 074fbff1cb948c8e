/**
 * The Batch API through the real `chatgate serve` and the official SDK, against a fake
 * upstream: upload, create, poll, download output and errors; malformed files; cancel with
 * partial output; expiry at the completion window; retries of rate-limited requests; chat,
 * legacy completions and embeddings; the creator key's scopes and project; audit records.
 */
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { waitForBatch } from '../support/wait-for-batch.js';

const MASTER = 'sk-contract-test-key';
let upstream: FakeUpstream;
let chatgate: RunningChatgate;
let client: OpenAI;
/** Delay of every upstream answer of slow-model (ms). */
let upstreamDelayMs = 0;
/** slow-model requests at the upstream now, and the most at once. */
let slowInFlight = 0;
let slowMaxInFlight = 0;

const lastUserText = (request: RecordedRequest): string => {
  const messages = request.body?.messages as Array<{ content: string }> | undefined;
  if (messages) return messages.at(-1)!.content;
  return String(request.body?.prompt ?? '');
};

beforeAll(async () => {
  upstream = await startFakeUpstream();
  chatgate = await startChatgate({
    masterKey: MASTER,
    config: `batches:
  retry_initial_delay_ms: 20
  concurrency_per_model: 4
models:
  - name: gpt-4o-mini
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: sk-upstream
  - name: slow-model
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: sk-upstream
    batch_concurrency: 2
  - name: text-embedding-3-small
    provider: openai-compatible
    base_url: ${upstream.url}
    api_key: sk-upstream
`,
  });
  client = chatgate.client();
});

afterAll(async () => {
  await chatgate?.stop();
  await upstream?.close();
});

beforeEach(() => {
  upstreamDelayMs = 0;
  slowMaxInFlight = 0;
  upstream.setBehavior((request) => {
    const slow = request.body?.model === 'slow-model';
    if (slow) {
      slowMaxInFlight = Math.max(slowMaxInFlight, ++slowInFlight);
      void request.outcome.finally(() => slowInFlight--);
    }
    return { kind: 'answer', text: `echo ${lastUserText(request)}`, delayMs: slow ? upstreamDelayMs : 0 };
  });
});

type Line = Record<string, unknown>;
const chatLine = (customId: string, text: string, model = 'gpt-4o-mini'): Line => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content: text }] },
});

async function upload(lines: Array<Line | string>, purpose: 'batch' | 'assistants' = 'batch', as: OpenAI = client) {
  const text = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
  return as.files.create({ file: await toFile(Buffer.from(text), 'requests.jsonl'), purpose });
}

function waitFor(id: string, done: (batch: OpenAI.Batches.Batch) => boolean, as: OpenAI = client, timeoutMs = 60_000): Promise<OpenAI.Batches.Batch> {
  return waitForBatch(as, id, done, timeoutMs);
}

const finished = (batch: OpenAI.Batches.Batch) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status);

async function lines(fileId: string | null | undefined, as: OpenAI = client): Promise<Array<Record<string, any>>> {
  if (!fileId) return [];
  const text = await (await as.files.content(fileId)).text();
  return text.trim() === '' ? [] : text.trim().split('\n').map((line) => JSON.parse(line));
}

async function refusal(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

async function createKey(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const response = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; secret: string };
}

describe('Batch API', () => {
  it('runs a chat batch end to end: every request once, answers in the output file, counts, audit', async () => {
    const input = Array.from({ length: 25 }, (_, index) => chatLine(`request-${index}`, `question ${index}`));
    const file = await upload(input);
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { team: 'search' } });
    expect(created).toMatchObject({ object: 'batch', status: 'validating', input_file_id: file.id, completion_window: '24h', metadata: { team: 'search' } });
    expect(created.id).toMatch(/^batch_/);
    expect(created.expires_at! - created.created_at).toBe(86_400);

    const batch = await waitFor(created.id, finished);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 25, completed: 25, failed: 0 });
    expect(batch.error_file_id).toBeNull();
    expect(batch.in_progress_at).not.toBeNull();
    expect(batch.finalizing_at).not.toBeNull();
    expect(batch.completed_at).not.toBeNull();

    const output = await lines(batch.output_file_id);
    expect(output.map((line) => line.custom_id)).toEqual(input.map((line) => line.custom_id));
    for (const [index, line] of output.entries()) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(200);
      expect(line.response.request_id).toMatch(/^req_/);
      expect(line.response.body.choices[0].message.content).toBe(`echo question ${index}`);
    }
    const outputFile = await client.files.retrieve(batch.output_file_id!);
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` });
    const listed = await client.files.list({ purpose: 'batch_output' });
    expect(listed.data.map((entry) => entry.id)).toContain(batch.output_file_id);

    // The requests went through the pipeline: audited with the creator's key, like live ones.
    // (The audit log is written behind the requests: give it a moment.)
    const ids = new Set(output.map((line) => line.response.request_id));
    let audited: Array<{ request_id: string; key_id: string; status: number; model: string }> = [];
    for (let tries = 0; tries < 50 && audited.length < 25; tries++) {
      if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const logs = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/logs?path=/v1/chat/completions&limit=200`, { headers: { authorization: `Bearer ${MASTER}` } });
      const records = ((await logs.json()) as { data: typeof audited }).data;
      audited = records.filter((record) => ids.has(record.request_id));
    }
    expect(audited).toHaveLength(25);
    expect(audited.every((record) => record.key_id === 'master' && record.status === 200 && record.model === 'gpt-4o-mini')).toBe(true);

    const page = await client.batches.list({ limit: 100 });
    expect(page.data.map((entry) => entry.id)).toContain(batch.id);
  }, 90_000);

  it('reports bad lines with their numbers, runs the good ones, and puts failures in the error file', async () => {
    upstream.enqueue({ kind: 'error', status: 400, error: { message: 'upstream says no', type: 'invalid_request_error', code: 'bad', param: null } });
    const file = await upload([
      chatLine('ok-1', 'first'),
      '{ this is not json',
      chatLine('ok-1', 'duplicate id'),
      { ...chatLine('wrong-url', 'x'), url: '/v1/embeddings' },
      { ...chatLine('wrong-method', 'x'), method: 'GET' },
      chatLine('no-model', 'x', 'no-such-model'),
      { custom_id: 'no-body', method: 'POST', url: '/v1/chat/completions' },
      { ...chatLine('streamed', 'x'), body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] } },
      '[1, 2]',
      { ...chatLine('bad-body', 'x'), body: { model: 'gpt-4o-mini', messages: [] } },
      chatLine('ok-2', 'second'),
    ]);
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitFor(created.id, finished);
    expect(batch.status).toBe('completed');
    expect(batch.errors?.data?.map((error) => [error.line, error.code])).toEqual([
      [2, 'invalid_json_line'],
      [3, 'duplicate_custom_id'],
      [4, 'invalid_url'],
      [5, 'invalid_method'],
      [6, 'model_not_found'],
      [7, 'missing_required_parameter'],
      [8, 'invalid_value'],
      [9, 'invalid_request'],
    ]);
    expect(batch.request_counts).toEqual({ total: 11, completed: 1, failed: 10 });
    const output = await lines(batch.output_file_id);
    // ok-1 met the upstream's 400 (not retried: a client error); ok-2 succeeded.
    expect(output.map((line) => line.custom_id)).toEqual(['ok-2']);
    const errors = await lines(batch.error_file_id);
    expect(errors.map((line) => line.custom_id)).toEqual(['ok-1', null, 'ok-1', 'wrong-url', 'wrong-method', 'no-model', 'no-body', 'streamed', null, 'bad-body']);
    expect(errors[0]!.response).toMatchObject({ status_code: 400, body: { error: { message: expect.stringContaining('upstream says no') } } });
    expect(errors[1]!).toMatchObject({ response: null, error: { code: 'invalid_json_line' } });
    expect(errors[9]!.response).toMatchObject({ status_code: 400, body: { error: { param: 'messages' } } });
  }, 60_000);

  it('fails a batch without a usable line, and an empty file', async () => {
    const bad = await upload(['nope', JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/completions', body: { model: 'gpt-4o-mini' } })]);
    const failed = await waitFor((await client.batches.create({ input_file_id: bad.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id, finished);
    expect(failed.status).toBe('failed');
    expect(failed.failed_at).not.toBeNull();
    expect(failed.errors?.data?.map((error) => [error.line, error.code])).toEqual([[1, 'invalid_json_line'], [2, 'invalid_url']]);
    expect(failed.output_file_id).toBeNull();

    const empty = await client.files.create({ file: await toFile(Buffer.from('\n\n'), 'empty.jsonl'), purpose: 'batch' });
    const emptyBatch = await waitFor((await client.batches.create({ input_file_id: empty.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id, finished);
    expect(emptyBatch.status).toBe('failed');
    expect(emptyBatch.errors?.data).toEqual([{ code: 'empty_file', message: 'The input file has no requests.', param: null, line: null }]);
  }, 30_000);

  it('refuses bad requests with OpenAI-style errors', async () => {
    const file = await upload([chatLine('a', 'x')]);
    const other = await upload([chatLine('a', 'x')], 'assistants');
    const create = (body: Record<string, unknown>) => refusal(client.batches.create(body as never));
    let error = await create({ endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect([error.status, error.param]).toEqual([400, 'input_file_id']);
    error = await create({ input_file_id: file.id, endpoint: '/v1/responses', completion_window: '24h' });
    expect([error.status, error.param]).toEqual([400, 'endpoint']);
    error = await create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: 'tomorrow' });
    expect([error.status, error.param, error.code]).toEqual([400, 'completion_window', 'invalid_value']);
    error = await create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect([error.status, error.param]).toEqual([404, 'input_file_id']);
    error = await create({ input_file_id: other.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect([error.status, error.code]).toEqual([400, 'invalid_file_purpose']);
    error = await create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', surprise: 1 });
    expect(error.status).toBe(400);
    expect((await refusal(client.batches.retrieve('batch_nope'))).status).toBe(404);
    expect((await refusal(client.batches.cancel('batch_nope'))).status).toBe(404);
    expect((await refusal(client.batches.list({ limit: 0 }))).status).toBe(400);
    const raw = await fetch(`${chatgate.url}/batches`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: '{oops' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const wrongMethod = await fetch(`${chatgate.url}/batches/batch_x/cancel`, { headers: { authorization: `Bearer ${MASTER}` } });
    expect(wrongMethod.status).toBe(405);

    const done = await waitFor((await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id, finished);
    error = await refusal(client.batches.cancel(done.id));
    expect([error.status, error.code]).toEqual([409, 'batch_not_cancellable']);
  }, 30_000);

  it('cancels a running batch: cancelling, then cancelled with the answers so far', async () => {
    upstreamDelayMs = 150;
    const input = Array.from({ length: 40 }, (_, index) => chatLine(`c-${index}`, `q${index}`, 'slow-model'));
    const created = await client.batches.create({ input_file_id: (await upload(input)).id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(created.id, (batch) => (batch.request_counts?.completed ?? 0) >= 4);
    // Live traffic to the same model is not queued behind the batch: the batch holds only its 2 slots.
    const startedAt = Date.now();
    const live = await client.chat.completions.create({ model: 'slow-model', messages: [{ role: 'user', content: 'live one' }] });
    expect(live.choices[0]!.message.content).toBe('echo live one');
    expect(Date.now() - startedAt).toBeLessThan(upstreamDelayMs * 4);
    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).not.toBeNull();
    const batch = await waitFor(created.id, finished);
    expect(batch.status).toBe('cancelled');
    expect(batch.cancelled_at).not.toBeNull();
    const output = await lines(batch.output_file_id);
    expect(output.length).toBe(batch.request_counts!.completed);
    expect(output.length).toBeGreaterThanOrEqual(4);
    expect(output.length).toBeLessThan(40);
    expect(new Set(output.map((line) => line.custom_id)).size).toBe(output.length);
    // The batch ran at most 2 of the slow model's requests at once (its batch_concurrency), plus the live one.
    expect(slowMaxInFlight).toBeGreaterThanOrEqual(2);
    expect(slowMaxInFlight).toBeLessThanOrEqual(3);
  }, 60_000);

  it('expires at the completion window: unrun requests are batch_expired errors', async () => {
    upstreamDelayMs = 400;
    const input = Array.from({ length: 30 }, (_, index) => chatLine(`e-${index}`, `q${index}`, 'slow-model'));
    const created = await client.batches.create({ input_file_id: (await upload(input)).id, endpoint: '/v1/chat/completions', completion_window: '2s' as '24h' });
    const batch = await waitFor(created.id, finished);
    expect(batch.status).toBe('expired');
    expect(batch.expired_at).not.toBeNull();
    const output = await lines(batch.output_file_id);
    const errors = await lines(batch.error_file_id);
    expect(output.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((line) => line.error?.code === 'batch_expired')).toBe(true);
    expect([...output, ...errors].map((line) => line.custom_id).sort()).toEqual(input.map((line) => line.custom_id).sort());
    expect(batch.request_counts).toEqual({ total: 30, completed: output.length, failed: errors.length });
  }, 30_000);

  it('retries rate-limited and failing requests, honouring retry-after', async () => {
    upstream.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '0' } });
    upstream.enqueue({ kind: 'error', status: 503 });
    upstream.enqueue({ kind: 'reset' });
    const created = await client.batches.create({ input_file_id: (await upload([chatLine('r-1', 'persist')])).id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitFor(created.id, finished);
    expect(batch.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect((await lines(batch.output_file_id))[0]!.response.body.choices[0].message.content).toBe('echo persist');
  }, 30_000);

  it('runs legacy completions and embeddings batches', async () => {
    const completions = await upload([
      { custom_id: 'p1', method: 'POST', url: '/v1/completions', body: { model: 'gpt-4o-mini', prompt: 'say hi' } },
      { custom_id: 'p2', method: 'POST', url: '/v1/completions', body: { model: 'gpt-4o-mini', prompt: 'say bye' } },
    ]);
    const embeddings = await upload([
      { custom_id: 'v1', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'hello' } },
      { custom_id: 'v2', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: ['a', 'b'] } },
    ]);
    const [first, second] = await Promise.all([
      client.batches.create({ input_file_id: completions.id, endpoint: '/v1/completions', completion_window: '24h' }),
      client.batches.create({ input_file_id: embeddings.id, endpoint: '/v1/embeddings', completion_window: '24h' }),
    ]);
    const completionOutput = await lines((await waitFor(first.id, finished)).output_file_id);
    expect(completionOutput.map((line) => [line.custom_id, line.response.body.object, line.response.body.choices[0].text])).toEqual([
      ['p1', 'text_completion', 'echo say hi'],
      ['p2', 'text_completion', 'echo say bye'],
    ]);
    const embeddingOutput = await lines((await waitFor(second.id, finished)).output_file_id);
    expect(embeddingOutput.map((line) => [line.custom_id, line.response.body.data.length])).toEqual([
      ['v1', 1],
      ['v2', 2],
    ]);
  }, 30_000);

  it("runs as the creator's key: its model scope applies per line, its endpoint scope at creation, its project isolates", async () => {
    const limited = await createKey({ name: 'limited', models: ['text-embedding-3-small'], endpoints: ['/v1/files*', '/v1/batches*', '/v1/chat/completions'] });
    const limitedClient = chatgate.client({ apiKey: limited.secret });
    const file = await upload([chatLine('denied', 'x')], 'batch', limitedClient);
    const batch = await waitFor((await limitedClient.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id, finished, limitedClient);
    expect(batch.request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
    const [denied] = await lines(batch.error_file_id, limitedClient);
    expect(denied!.response).toMatchObject({ status_code: 403, body: { error: { code: 'model_not_allowed' } } });

    const embeddingsFile = await upload([{ custom_id: 'v', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } }], 'batch', limitedClient);
    const error = await refusal(limitedClient.batches.create({ input_file_id: embeddingsFile.id, endpoint: '/v1/embeddings', completion_window: '24h' }));
    expect([error.status, error.code]).toEqual([403, 'endpoint_not_allowed']);

    const stranger = chatgate.client({ apiKey: (await createKey({ name: 'stranger', project: 'elsewhere' })).secret });
    expect((await refusal(stranger.batches.retrieve(batch.id))).status).toBe(404);
    expect((await refusal(stranger.batches.cancel(batch.id))).status).toBe(404);
    expect((await stranger.batches.list()).data).toEqual([]);
    expect((await refusal(stranger.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }))).status).toBe(404);
  }, 30_000);

  it("stops a batch's remaining requests when its key is revoked", async () => {
    upstreamDelayMs = 150;
    const key = await createKey({ name: 'short-lived' });
    const keyClient = chatgate.client({ apiKey: key.secret });
    const input = Array.from({ length: 40 }, (_, index) => chatLine(`k-${index}`, `q${index}`, 'slow-model'));
    const created = await keyClient.batches.create({ input_file_id: (await upload(input, 'batch', keyClient)).id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(created.id, (batch) => (batch.request_counts?.completed ?? 0) >= 4);
    const revoked = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/keys/${key.id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` } });
    expect(revoked.status).toBe(200);
    // The key can no longer look; the master key (same project) can.
    const batch = await waitFor(created.id, finished);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts!.completed).toBeLessThan(40);
    const errors = await lines(batch.error_file_id);
    expect(errors.length).toBe(40 - batch.request_counts!.completed);
    expect(errors.every((line) => line.response?.status_code === 401 && line.response.body.error.code === 'key_revoked')).toBe(true);
  }, 60_000);
});
