/**
 * Fine-tuning through the real `chatgate serve` and the official SDK, with the built-in CPU
 * LoRA trainer on a tiny generated model: files.create + fine_tuning.jobs.create; metrics
 * events with falling loss, a checkpoint per epoch, the result file; the fine-tuned model is
 * listed, answers the trained questions far more often than the base model, and can be
 * deleted. Also: validation errors with line numbers, refused requests, cancel, pause and
 * resume, and a SIGKILL mid-training after which the restarted server resumes the job.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { writeTinyGguf } from '../support/tiny-gguf.js';

const MASTER = 'sk-fine-tuning-test-key';
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
const PAIRS = WORDS.map((word, index) => ({ question: `What is the code for ${word}?`, answer: `${word}-${(index * 7) % 10}` }));
const example = (pair: { question: string; answer: string }) =>
  JSON.stringify({ messages: [{ role: 'system', content: 'Answer with the code.' }, { role: 'user', content: pair.question }, { role: 'assistant', content: pair.answer }] });

let scratch: string;
let modelPath: string;
let chatgate: RunningChatgate;
let client: OpenAI;

function config(): string {
  return `fine_tuning:
  lease_seconds: 2
models:
  - name: tiny
    provider: llama-cpp
    path: ${JSON.stringify(modelPath)}
    context_size: 256
    parallel: 1
    threads: 1
    gpu_layers: 0
    fine_tuning:
      trainer: local
      learning_rate: 0.005
      threads: 1
      checkpoint_seconds: 1
  - name: gpt-4o-mini
    provider: mock
`;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'chatgate-fine-tuning-'));
  modelPath = join(scratch, 'tiny.gguf');
  await writeTinyGguf(modelPath, { seed: 42, embeddingLength: 96, blockCount: 2, feedForwardLength: 192, headCount: 4, headCountKv: 4 });
  chatgate = await startChatgate({ config: config(), masterKey: MASTER, dataDirectory: join(scratch, 'data') });
  client = chatgate.client();
}, 60_000);

afterAll(async () => {
  await chatgate?.stop().catch(() => undefined);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function upload(lines: string[], name = 'train.jsonl', purpose: 'fine-tune' | 'batch' = 'fine-tune') {
  return client.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), name), purpose });
}

async function waitFor(id: string, done: (job: OpenAI.FineTuning.Jobs.FineTuningJob) => boolean, timeoutMs = 150_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(id);
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const ended = (job: { status: string }) => ['succeeded', 'failed', 'cancelled'].includes(job.status);

async function allEvents(id: string): Promise<OpenAI.FineTuning.Jobs.FineTuningJobEvent[]> {
  const events: OpenAI.FineTuning.Jobs.FineTuningJobEvent[] = [];
  for await (const event of client.fineTuning.jobs.listEvents(id, { limit: 100 })) events.push(event);
  return events.reverse();
}

async function greedyAnswers(model: string): Promise<number> {
  let matches = 0;
  for (const pair of PAIRS) {
    const completion = await client.chat.completions.create({
      model,
      temperature: 0,
      max_tokens: 12,
      messages: [{ role: 'system', content: 'Answer with the code.' }, { role: 'user', content: pair.question }],
    });
    if ((completion.choices[0]!.message.content ?? '').trim() === pair.answer) matches++;
  }
  return matches;
}

async function refusal(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

describe('fine-tuning with the local trainer', () => {
  it('fine-tunes a model that answers the training data: falling loss, checkpoints, served, deletable', async () => {
    const baseMatches = await greedyAnswers('tiny');
    const training = await upload(PAIRS.map(example));
    const validation = await upload(PAIRS.slice(0, 4).map(example), 'valid.jsonl');
    const created = await client.fineTuning.jobs.create({
      model: 'tiny',
      training_file: training.id,
      validation_file: validation.id,
      suffix: 'codes',
      seed: 7,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 20, batch_size: 2, learning_rate_multiplier: 1 } } },
      metadata: { purpose: 'test' },
    });
    expect(created).toMatchObject({ object: 'fine_tuning.job', status: 'validating_files', model: 'tiny', training_file: training.id, fine_tuned_model: null, seed: 7, metadata: { purpose: 'test' } });
    expect(created.id).toMatch(/^ftjob-/);

    const job = await waitFor(created.id, ended);
    expect(job.status).toBe('succeeded');
    expect(job.fine_tuned_model).toMatch(/^ft:tiny:default:codes:[a-z0-9]{8}$/);
    expect(job.hyperparameters).toEqual({ n_epochs: 20, batch_size: 2, learning_rate_multiplier: 1 });
    expect(job.trained_tokens).toBeGreaterThan(0);
    expect(job.finished_at).not.toBeNull();

    const events = await allEvents(job.id);
    const metrics = events.filter((event) => event.type === 'metrics').map((event) => event.data as { step: number; train_loss: number; valid_loss?: number });
    expect(metrics.length).toBeGreaterThanOrEqual(20);
    expect(metrics.map((entry) => entry.step)).toEqual([...metrics.map((entry) => entry.step)].sort((a, b) => a - b));
    const first = metrics[0]!.train_loss;
    const last = metrics.at(-1)!.train_loss;
    expect(last).toBeLessThan(first * 0.3);
    expect(metrics.some((entry) => typeof entry.valid_loss === 'number')).toBe(true);
    const accuracy = events.filter((event) => event.type === 'metrics').map((event) => (event.data as { train_mean_token_accuracy: number }).train_mean_token_accuracy);
    expect(accuracy.at(-1)!).toBeGreaterThan(accuracy[0]!);
    expect(events.map((event) => event.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^Files validated: 12 examples/), 'The job has successfully completed']));

    const checkpoints = (await client.fineTuning.jobs.checkpoints.list(job.id, { limit: 100 })).data;
    expect(checkpoints).toHaveLength(20);
    expect(checkpoints[0]).toMatchObject({ object: 'fine_tuning.job.checkpoint', fine_tuning_job_id: job.id });
    expect(checkpoints[0]!.fine_tuned_model_checkpoint).toMatch(new RegExp(`^${job.fine_tuned_model!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:ckpt-step-\\d+$`));

    const csv = await (await client.files.content(job.result_files[0]!)).text();
    expect(csv.split('\n')[0]).toBe('step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy');

    const listed = (await client.models.list()).data.map((model) => model.id);
    expect(listed).toContain(job.fine_tuned_model);
    // Checkpoints are models too (the last one is the final adapter).
    expect(listed).toContain(checkpoints[0]!.fine_tuned_model_checkpoint);
    const fromCheckpoint = await client.chat.completions.create({ model: checkpoints[0]!.fine_tuned_model_checkpoint, max_tokens: 8, messages: [{ role: 'user', content: PAIRS[0]!.question }] });
    expect(fromCheckpoint.model).toBe(checkpoints[0]!.fine_tuned_model_checkpoint);
    const tunedMatches = await greedyAnswers(job.fine_tuned_model!);
    console.log(`[fine-tuning] loss ${first.toFixed(3)} → ${last.toFixed(3)}; greedy exact answers: base ${baseMatches}/12, fine-tuned ${tunedMatches}/12`);
    expect(baseMatches).toBe(0);
    expect(tunedMatches).toBeGreaterThanOrEqual(9);

    // Another project neither sees nor uses the model, nor the job.
    const created2 = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'stranger', project: 'elsewhere' }),
    });
    const stranger = chatgate.client({ apiKey: ((await created2.json()) as { secret: string }).secret });
    expect((await stranger.models.list()).data.map((model) => model.id)).not.toContain(job.fine_tuned_model);
    expect((await refusal(stranger.chat.completions.create({ model: job.fine_tuned_model!, messages: [{ role: 'user', content: 'hi' }] }))).status).toBe(404);
    expect((await refusal(stranger.models.retrieve(job.fine_tuned_model!))).status).toBe(404);
    expect((await refusal(stranger.models.delete(job.fine_tuned_model!))).status).toBe(404);
    expect((await refusal(stranger.fineTuning.jobs.retrieve(job.id))).status).toBe(404);

    expect((await client.fineTuning.jobs.list({ limit: 100 })).data.map((entry) => entry.id)).toContain(job.id);
    expect((await refusal(client.fineTuning.jobs.cancel(job.id))).status).toBe(409);

    const deleted = await client.models.delete(job.fine_tuned_model!);
    expect(deleted).toEqual({ id: job.fine_tuned_model, object: 'model', deleted: true });
    expect((await refusal(client.chat.completions.create({ model: job.fine_tuned_model!, messages: [{ role: 'user', content: 'hi' }] }))).status).toBe(404);
    const remaining = (await client.models.list()).data.map((model) => model.id);
    expect(remaining).not.toContain(job.fine_tuned_model);
    expect(remaining.filter((id) => id.startsWith(job.fine_tuned_model!))).toEqual([]);
    expect((await refusal(client.models.delete('tiny'))).status).toBe(403);
  }, 240_000);

  it('fails a job whose file breaks the rules, reporting every problem with its line', async () => {
    const lines = PAIRS.slice(0, 10).map(example);
    lines[1] = '{"messages": [{"role": "user", "content": "no answer"}]}';
    lines[3] = '{not json';
    lines[5] = '{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}';
    lines[7] = '{"messages": [{"role": "user", "content": "x", "colour": "red"}, {"role": "assistant", "content": "y"}]}';
    const file = await upload(lines, 'bad.jsonl');
    const created = await client.fineTuning.jobs.create({ model: 'tiny', training_file: file.id });
    const job = await waitFor(created.id, ended, 30_000);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'invalid_training_file', param: 'training_file' });
    expect(job.error!.message).toMatch(/line 2: .*line 4: .*line 6: .*line 8: /s);
    const problems = (await allEvents(job.id)).filter((event) => event.level === 'error' && /^Line \d+:/.test(event.message));
    expect(problems.map((event) => [(event.data as { line: number }).line, (event.data as { code: string }).code])).toEqual([
      [2, 'missing_assistant_message'],
      [4, 'invalid_json'],
      [6, 'invalid_role'],
      [8, 'unrecognized_key'],
    ]);
  }, 60_000);

  it('refuses bad requests with OpenAI-style errors', async () => {
    const training = await upload(PAIRS.map(example));
    const batchFile = await upload(['{}'], 'x.jsonl', 'batch');
    const create = (body: Record<string, unknown>) => refusal(client.fineTuning.jobs.create(body as never));
    let error = await create({ model: 'no-such-model', training_file: training.id });
    expect([error.status, error.code]).toEqual([404, 'model_not_found']);
    error = await create({ model: 'gpt-4o-mini', training_file: training.id });
    expect([error.status, error.code, error.param]).toEqual([400, 'model_not_available', 'model']);
    error = await create({ model: 'tiny', training_file: 'file-nope' });
    expect([error.status, error.param]).toEqual([400, 'training_file']);
    error = await create({ model: 'tiny', training_file: batchFile.id });
    expect([error.status, error.code]).toEqual([400, 'invalid_file_purpose']);
    error = await create({ model: 'tiny', training_file: training.id, hyperparameters: { n_epochs: 0 } });
    expect([error.status, error.param]).toEqual([400, 'hyperparameters.n_epochs']);
    error = await create({ model: 'tiny', training_file: training.id, method: { type: 'dpo' } });
    expect([error.status, error.code]).toEqual([400, 'unsupported_method']);
    error = await create({ model: 'tiny', training_file: training.id, suffix: 'has spaces' });
    expect([error.status, error.param]).toEqual([400, 'suffix']);
    error = await create({ training_file: training.id });
    expect([error.status, error.param]).toEqual([400, 'model']);
    expect((await refusal(client.fineTuning.jobs.retrieve('ftjob-nope'))).status).toBe(404);
    expect((await refusal(client.fineTuning.jobs.cancel('ftjob-nope'))).status).toBe(404);
    expect((await refusal(client.fineTuning.jobs.listEvents('ftjob-nope'))).status).toBe(404);
  }, 30_000);

  it('cancels, pauses and resumes a running job', async () => {
    const training = await upload(PAIRS.map(example));
    const long = await client.fineTuning.jobs.create({ model: 'tiny', training_file: training.id, hyperparameters: { n_epochs: 50, batch_size: 1 } });
    await waitFor(long.id, (job) => job.status === 'running');
    // While it runs, the job says when it should finish.
    const estimated = await waitFor(long.id, (job) => typeof job.estimated_finish === 'number', 30_000);
    expect(estimated.estimated_finish!).toBeGreaterThan(Math.floor(Date.now() / 1000));
    // Training has begun (a metrics event) before it is paused.
    for (let tries = 0; tries < 300 && !(await allEvents(long.id)).some((event) => event.type === 'metrics'); tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    const paused = await client.fineTuning.jobs.pause(long.id);
    expect(paused.status).toBe('paused');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const stepsWhilePaused = (await allEvents(long.id)).filter((event) => event.type === 'metrics').length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await allEvents(long.id)).filter((event) => event.type === 'metrics').length).toBe(stepsWhilePaused);
    // Pausing again is harmless; resuming a job that is not paused is refused.
    expect((await client.fineTuning.jobs.pause(long.id)).status).toBe('paused');

    const resumed = await client.fineTuning.jobs.resume(long.id);
    expect(resumed.status).toBe('queued');
    expect((await refusal(client.fineTuning.jobs.resume(long.id))).status).toBe(409);
    await waitFor(long.id, (job) => job.status === 'running');
    const started = Date.now();
    for (let tries = 0; tries < 300 && (await allEvents(long.id)).filter((event) => event.type === 'metrics').length <= stepsWhilePaused; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await allEvents(long.id)).map((event) => event.message)).toContain('Fine-tuning job resumed from its last saved state');

    const cancelled = await client.fineTuning.jobs.cancel(long.id);
    expect(cancelled.status).toBe('cancelled');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const count = (await allEvents(long.id)).filter((event) => event.type === 'metrics').length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await allEvents(long.id)).filter((event) => event.type === 'metrics').length).toBe(count);
    expect((await client.fineTuning.jobs.retrieve(long.id)).status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);

  it('resumes a job after the server is killed with SIGKILL mid-training', async () => {
    const training = await upload(PAIRS.map(example));
    const created = await client.fineTuning.jobs.create({ model: 'tiny', training_file: training.id, hyperparameters: { n_epochs: 6, batch_size: 2 } });
    // Wait for a saved state (a checkpoint), then kill.
    for (let tries = 0; tries < 600 && (await client.fineTuning.jobs.checkpoints.list(created.id)).data.length === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise<void>((resolve) => {
      chatgate.process.once('exit', () => resolve());
      chatgate.process.kill('SIGKILL');
    });
    chatgate = await startChatgate({ config: config(), masterKey: MASTER, dataDirectory: join(scratch, 'data') });
    client = chatgate.client();
    const job = await waitFor(created.id, ended);
    expect(job.status).toBe('succeeded');
    const messages = (await allEvents(job.id)).map((event) => event.message);
    expect(messages).toContain('Fine-tuning job resumed from its last saved state');
    expect((await client.models.list()).data.map((model) => model.id)).toContain(job.fine_tuned_model);
  }, 240_000);
});
