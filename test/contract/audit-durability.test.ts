/**
 * No answered request loses its audit record when the process is killed (docs/governance.md),
 * through the real `chatgate serve`: 16 clients drive it (plain answers, streams, refusals)
 * while a batch runs; the server is killed with SIGKILL mid-load and started again on the
 * same data. Every request id a client got an answer for, and every batch output line, must
 * then be in the audit log; the chain must verify; and the budget rebuilt from the log after
 * the restart must count all the spend that was answered. Runs on SQLite and on PostgreSQL
 * (a schema of its own, dropped at the end).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI, { toFile } from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest, type AdminAnswer } from '../support/admin-api.js';
import { CHATGATE_BIN, startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { waitForBatch } from '../support/wait-for-batch.js';

const run = promisify(execFile);
const MASTER = 'sk-audit-durability-test';
const MODEL = 'durable-mock';
const CLIENTS = 16;
let scratch: string;
const running: RunningChatgate[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'chatgate-audit-durability-'));
});

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((instance) => (instance.process.exitCode === null && instance.process.signalCode === null ? instance.stop().catch(() => undefined) : undefined)));
}

afterAll(async () => {
  await stopAll();
  rmSync(scratch, { recursive: true, force: true });
});

/** One micro-dollar per token: a request's cost is its prompt plus completion tokens. */
function config(extra: string[] = []): string {
  return [...extra, 'prices:', `  ${MODEL}: { input: 1, output: 1 }`, 'batches:', '  concurrency_per_model: 4', '  lease_seconds: 2', 'models:', `  - name: ${MODEL}`, '    provider: mock', ''].join('\n');
}

async function start(options: Parameters<typeof startChatgate>[0]): Promise<RunningChatgate> {
  const instance = await startChatgate({ masterKey: MASTER, ...options });
  running.push(instance);
  return instance;
}

function admin(instance: RunningChatgate, method: string, path: string, body?: unknown): Promise<AdminAnswer> {
  return adminRequest(instance.url, MASTER, method, path, body);
}

/** Every request id in the audit log (the JSONL export). */
async function auditedRequestIds(instance: RunningChatgate): Promise<Set<string>> {
  const { status, text } = await admin(instance, 'GET', '/logs?format=jsonl');
  expect(status).toBe(200);
  return new Set(text.trim().split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { request_id: string }).request_id));
}

interface Answered {
  /** Request ids of every answer a client received in full (success or refusal). */
  ids: string[];
  /** Cost of the plain answers (prompt + completion tokens at one micro-dollar each). */
  spendMicros: number;
}

/**
 * 16 clients in a loop until `stopped()`: 5 of 8 requests plain chat (the SDK), 2 streamed
 * (fetch, answered only once `[DONE]` arrived), 1 refused (unknown model, 404). Connection
 * failures (the kill) are not answers.
 */
function drive(instance: RunningChatgate, key: string, stopped: () => boolean, onAnswer: () => void): { answered: Answered; done: Promise<void> } {
  const answered: Answered = { ids: [], spendMicros: 0 };
  const note = (id: string | null | undefined, spendMicros = 0): void => {
    // Counted after the kill too: whatever reaches a client was released before the process died.
    if (!id) return;
    answered.ids.push(id);
    answered.spendMicros += spendMicros;
    onAnswer();
  };
  const client = instance.client({ apiKey: key });
  let counter = 0;
  const worker = async (): Promise<void> => {
    while (!stopped()) {
      const n = counter++;
      const kind = n % 8;
      try {
        if (kind < 5) {
          const { data, response } = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `question ${n}` }] }).withResponse();
          note(response.headers.get('x-request-id'), data.usage!.prompt_tokens + data.usage!.completion_tokens);
        } else if (kind < 7) {
          const response = await fetch(`${instance.url}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: `streamed question ${n}` }] }),
          });
          const text = await response.text();
          if (text.endsWith('data: [DONE]\n\n')) note(response.headers.get('x-request-id'));
        } else {
          await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
        }
      } catch (error) {
        if (error instanceof OpenAI.APIError && error.status !== undefined) note(error.requestID);
        else if (!stopped()) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  return { answered, done: Promise.all(Array.from({ length: CLIENTS }, worker)).then(() => undefined) };
}

async function verifyWithCli(dataDirectory: string, configText: string): Promise<{ code: number; stdout: string }> {
  const configPath = join(scratch, `verify-${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(configPath, configText);
  return run(process.execPath, [CHATGATE_BIN, 'audit', 'verify', '--data-dir', dataDirectory, '--config', configPath], { cwd: scratch }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
}

async function crashUnderLoad(configText: string, dataDirectory: string): Promise<void> {
  const first = await start({ config: configText, dataDirectory });
  const created = await admin(first, 'POST', '/keys', { name: 'load', budget_usd: 1000, budget_period: 'total' });
  expect(created.status, created.text).toBe(201);
  const key = created.json as { id: string; secret: string };

  const lines = Array.from({ length: 1000 }, (_, index) =>
    JSON.stringify({ custom_id: `line-${index}`, method: 'POST', url: '/v1/chat/completions', body: { model: MODEL, messages: [{ role: 'user', content: `line ${index}` }] } }),
  );
  const creator = first.client({ apiKey: key.secret });
  const file = await creator.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'lines.jsonl'), purpose: 'batch' });
  const batch = await creator.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });

  // Kill mid-load, at once when an answer arrives (its record was made a moment ago), once
  // the load ran 1.5 s with 200 answers and some batch lines are done (20 s at most).
  let dead = false;
  let due = false;
  const exited = new Promise<void>((resolve) => first.process.once('exit', () => resolve()));
  const kill = (): void => {
    if (dead) return;
    dead = true;
    first.process.kill('SIGKILL');
  };
  const load = drive(first, key.secret, () => dead, () => {
    if (due) kill();
  });
  const loadStarted = Date.now();
  while (Date.now() - loadStarted < 20_000 && (Date.now() - loadStarted < 1_500 || load.answered.ids.length < 200)) await new Promise((resolve) => setTimeout(resolve, 20));
  await waitForBatch(creator, batch.id, (current) => (current.request_counts?.completed ?? 0) >= 20, 30_000, 50);
  due = true;
  const fallback = setTimeout(kill, 5_000);
  await exited;
  clearTimeout(fallback);
  await load.done;
  const answered = load.answered;
  expect(answered.ids.length).toBeGreaterThan(100);

  const second = await start({ config: configText, dataDirectory });
  const audited = await auditedRequestIds(second);
  const missing = answered.ids.filter((id) => !audited.has(id));
  expect(missing, `${missing.length} of ${answered.ids.length} answered requests have no audit record`).toEqual([]);

  // Batch lines: every line in the output (the ones written before the kill among them) has its record.
  const resumed = second.client({ apiKey: key.secret });
  const done = await waitForBatch(resumed, batch.id, (current) => current.status === 'completed', 60_000, 100);
  const output = (await (await resumed.files.content(done.output_file_id!)).text()).trim().split('\n').map((line) => JSON.parse(line) as { response: { request_id: string } });
  expect(output).toHaveLength(1000);
  const auditedAfterBatch = await auditedRequestIds(second);
  const unrecordedLines = output.filter((line) => !auditedAfterBatch.has(line.response.request_id));
  expect(unrecordedLines.length, 'batch lines without an audit record').toBe(0);

  // The budget rebuilt from the log counts all answered spend: with exactly that spend plus
  // 500 micro-dollars allowed, a request that may cost over 1,000 is refused.
  const tight = await admin(second, 'PATCH', `/keys/${key.id}`, { budget_usd: (answered.spendMicros + 500) / 1e6 });
  expect(tight.status, tight.text).toBe(200);
  const probe = await resumed.chat.completions.create({ model: MODEL, max_tokens: 1_000, messages: [{ role: 'user', content: 'probe' }] }).catch((error: unknown) => error);
  expect(probe).toBeInstanceOf(OpenAI.APIError);
  expect((probe as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');

  const verification = await admin(second, 'GET', '/audit/verify');
  expect(verification.json).toMatchObject({ ok: true });
  await second.stop();
  // A clean stop stores everything and leaves no journal behind.
  expect(readdirSync(dataDirectory).filter((name) => name.startsWith('audit-journal-'))).toEqual([]);
  const cli = await verifyWithCli(dataDirectory, configText);
  expect(cli.stdout).toContain('Audit chain intact');
  expect(cli.code).toBe(0);
}

describe('audit records survive SIGKILL', () => {
  it('SQLite: every answered request and batch line is in the audit log after a kill under load', async () => {
    await crashUnderLoad(config(), join(scratch, 'sqlite-data'));
  }, 120_000);

  describe('PostgreSQL', () => {
    const baseUrl = process.env.CHATGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `chatgate_audit_durability_${randomBytes(5).toString('hex')}`;
    const databaseUrl = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    let adminClient: pg.Client;

    beforeAll(async () => {
      adminClient = new pg.Client({ connectionString: baseUrl });
      await adminClient.connect();
      await adminClient.query(`CREATE SCHEMA ${schema}`);
    });

    afterAll(async () => {
      await stopAll();
      await adminClient?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await adminClient?.end();
    });

    it('every answered request and batch line is in the audit log after a kill under load', async () => {
      await crashUnderLoad(config([`database_url: ${JSON.stringify(databaseUrl)}`]), join(scratch, 'pg-data'));
    }, 120_000);
  });
});
