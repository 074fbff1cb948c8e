/**
 * Batches survive crashes and spread over processes, through the real `chatgate serve`:
 * - SQLite: the server is killed with SIGKILL mid-batch and started again on the same data;
 *   the batch resumes and its output holds every custom_id exactly once.
 * - PostgreSQL: two servers share one database (and one files directory); both work on one
 *   batch's requests; one of them is killed with SIGKILL and the other finishes the batch,
 *   again with every custom_id exactly once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { waitForBatch } from '../support/wait-for-batch.js';

const MASTER = 'sk-durability-test-key';
let upstream: FakeUpstream;
let scratch: string;
const running: RunningChatgate[] = [];

const questionOf = (request: RecordedRequest): string => (request.body?.messages as Array<{ content: string }>)[0]!.content;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  upstream.setBehavior((request) => ({ kind: 'answer', text: `answer to ${questionOf(request)}`, delayMs: 25 }));
  scratch = mkdtempSync(join(tmpdir(), 'chatgate-batch-durability-'));
});

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((instance) => (instance.process.exitCode === null && instance.process.signalCode === null ? instance.stop().catch(() => undefined) : undefined)));
}

afterAll(async () => {
  await stopAll();
  await upstream?.close();
  rmSync(scratch, { recursive: true, force: true });
});

function config(extra: string[] = []): string {
  return [
    ...extra,
    'batches:',
    '  lease_seconds: 2',
    '  concurrency_per_model: 4',
    'models:',
    '  - name: gpt-4o-mini',
    '    provider: openai-compatible',
    `    base_url: ${upstream.url}`,
    '    api_key: sk-upstream',
    '',
  ].join('\n');
}

async function start(options: Parameters<typeof startChatgate>[0]): Promise<RunningChatgate> {
  const instance = await startChatgate({ masterKey: MASTER, ...options });
  running.push(instance);
  return instance;
}

async function createBatch(client: OpenAI, count: number, tag: string): Promise<{ id: string; customIds: string[] }> {
  const customIds = Array.from({ length: count }, (_, index) => `${tag}-${index}`);
  const text = customIds
    .map((customId) => JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: customId }] } }))
    .join('\n');
  const file = await client.files.create({ file: await toFile(Buffer.from(text), `${tag}.jsonl`), purpose: 'batch' });
  const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  return { id: batch.id, customIds };
}

function waitFor(client: OpenAI, id: string, done: (batch: OpenAI.Batches.Batch) => boolean, timeoutMs = 90_000): Promise<OpenAI.Batches.Batch> {
  return waitForBatch(client, id, done, timeoutMs, 50);
}

async function outputLines(client: OpenAI, fileId: string): Promise<Array<{ custom_id: string; response: { status_code: number; body: { choices: Array<{ message: { content: string } }> } } }>> {
  const text = await (await client.files.content(fileId)).text();
  return text.trim().split('\n').map((line) => JSON.parse(line));
}

function expectExactlyOnce(lines: Awaited<ReturnType<typeof outputLines>>, customIds: string[]): void {
  expect(lines.map((line) => line.custom_id)).toEqual(customIds);
  for (const line of lines) {
    expect(line.response.status_code).toBe(200);
    expect(line.response.body.choices[0]!.message.content).toBe(`answer to ${line.custom_id}`);
  }
}

function killed(instance: RunningChatgate): Promise<void> {
  return new Promise((resolve) => {
    instance.process.once('exit', () => resolve());
    instance.process.kill('SIGKILL');
  });
}

describe('batch durability', () => {
  it('SQLite: SIGKILL mid-batch, restart on the same data, each custom_id exactly once', async () => {
    const dataDirectory = join(scratch, 'sqlite-data');
    const first = await start({ config: config(), dataDirectory });
    const client = first.client();
    const { id, customIds } = await createBatch(client, 300, 'kill');
    await waitFor(client, id, (batch) => (batch.request_counts?.completed ?? 0) >= 60);
    await killed(first);
    const before = upstream.requests.length;
    expect(before).toBeLessThan(300);

    const second = await start({ config: config(), dataDirectory });
    const resumed = second.client();
    const batch = await waitFor(resumed, id, (current) => current.status === 'completed');
    expect(batch.request_counts).toEqual({ total: 300, completed: 300, failed: 0 });
    expectExactlyOnce(await outputLines(resumed, batch.output_file_id!), customIds);
    // Only the requests in flight at the kill can have been sent twice.
    const sent = upstream.requests.filter((request) => questionOf(request).startsWith('kill-')).map(questionOf);
    expect(new Set(sent).size).toBe(300);
    expect(sent.length - 300).toBeLessThanOrEqual(8);
  }, 120_000);

  describe('PostgreSQL', () => {
    const baseUrl = process.env.CHATGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `chatgate_batches_${randomBytes(5).toString('hex')}`;
    const databaseUrl = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    let admin: pg.Client;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
    });

    afterAll(async () => {
      await stopAll();
      await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin?.end();
    });

    it('two servers share one batch; one is killed, the other finishes it; each custom_id exactly once', async () => {
      const shared = [`database_url: ${JSON.stringify(databaseUrl)}`, 'files:', `  directory: ${JSON.stringify(join(scratch, 'shared-files'))}`];
      const first = await start({ config: config(shared), dataDirectory: join(scratch, 'pg-one') });
      const second = await start({ config: config(shared), dataDirectory: join(scratch, 'pg-two') });
      const client = first.client();
      const { id, customIds } = await createBatch(client, 400, 'shared');
      await waitFor(client, id, (batch) => (batch.request_counts?.completed ?? 0) >= 150);
      // Both processes took requests of the one batch.
      const workers = await admin.query<{ worker: string }>(`SELECT DISTINCT worker FROM ${schema}.job_items WHERE job_id = $1 AND worker IS NOT NULL`, [`job_${id}`]);
      const pids = new Set(workers.rows.map((row) => row.worker.split(':')[1]));
      expect(pids).toEqual(new Set([String(first.process.pid), String(second.process.pid)]));

      // Kill the one holding the batch's job: the other takes over once its lease lapses.
      const holder = await admin.query<{ locked_by: string }>(`SELECT locked_by FROM ${schema}.jobs WHERE id = $1`, [`job_${id}`]);
      const holderPid = holder.rows[0]!.locked_by.split(':')[1];
      const [victim, survivor] = holderPid === String(first.process.pid) ? [first, second] : [second, first];
      await killed(victim);
      const survivorClient = survivor.client();
      const batch = await waitFor(survivorClient, id, (current) => current.status === 'completed');
      expect(batch.request_counts).toEqual({ total: 400, completed: 400, failed: 0 });
      expectExactlyOnce(await outputLines(survivorClient, batch.output_file_id!), customIds);
    }, 120_000);
  });
});
