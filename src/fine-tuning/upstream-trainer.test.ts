/**
 * The upstream trainer against a small fake of OpenAI's fine-tuning API (node:http): files are
 * uploaded and the job created once, events mirrored once each in order (the fake lists them
 * newest first in pages of 3, as OpenAI does with `after`), checkpoints mirrored, a restart
 * with saved state resumes polling, cancel and pause are forwarded, upstream failures and
 * create errors become TrainerErrors, and 5xx blips while polling are retried.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../config/schema.js';
import { TrainerError, type TrainerProgress, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';
import { createUpstreamTrainer } from './upstream-trainer.js';

const API_KEY = 'sk-test-upstream-key';
const PAGE_SIZE = 3;

interface FakeEvent {
  object: 'fine_tuning.job.event';
  id: string;
  created_at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  type: 'message' | 'metrics';
  data: Record<string, unknown>;
}

interface FakeJob {
  id: string;
  status: string;
  body: Record<string, unknown>;
  polls: number;
  events: FakeEvent[];
  checkpoints: Array<Record<string, unknown>>;
  fine_tuned_model: string | null;
  trained_tokens: number | null;
  error: Record<string, unknown> | null;
}

/** OpenAI's fine-tuning API, enough of it: each GET of a job moves its scripted progression on. */
class FakeFineTuningUpstream {
  readonly files = new Map<string, { filename: string; purpose: string; content: string }>();
  readonly jobs = new Map<string, FakeJob>();
  readonly log: string[] = [];
  /** Paths (`GET /v1/fine_tuning/jobs/ftjob-1`) answered with 5xx this many more times. */
  readonly failures = new Map<string, number>();
  /** Paths whose connection is dropped without an answer this many more times. */
  readonly resets = new Map<string, number>();
  pauseSupported = true;
  /** 'fail': the job fails after starting; 'cancelled': someone cancels it upstream. */
  ending: 'succeed' | 'fail' | 'cancelled' = 'succeed';
  private server: Server | undefined;
  private clock = 1_700_000_000;
  private eventCount = 0;
  baseUrl = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        response.statusCode = 500;
        response.end(JSON.stringify({ error: { message: String(error) } }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  reset(): void {
    this.files.clear();
    this.jobs.clear();
    this.log.length = 0;
    this.failures.clear();
    this.resets.clear();
    this.pauseSupported = true;
    this.ending = 'succeed';
  }

  count(entry: string): number {
    return this.log.filter((line) => line === entry).length;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const body = await readBody(request);
    const entry = `${request.method} ${url.pathname}`;
    this.log.push(entry);
    const send = (status: number, payload: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(payload));
    };
    const error = (status: number, message: string, code: string | null = null): void =>
      send(status, { error: { message, type: 'invalid_request_error', param: null, code } });

    if (request.headers.authorization !== `Bearer ${API_KEY}`) return error(401, 'Incorrect API key provided.', 'invalid_api_key');
    const resets = this.resets.get(entry) ?? 0;
    if (resets > 0) {
      this.resets.set(entry, resets - 1);
      request.socket.destroy();
      return;
    }
    const left = this.failures.get(entry) ?? 0;
    if (left > 0) {
      this.failures.set(entry, left - 1);
      return send(503, { error: { message: 'The server is overloaded.', type: 'server_error', param: null, code: null } });
    }

    if (request.method === 'POST' && url.pathname === '/v1/files') {
      const form = await new Response(new Uint8Array(body), { headers: { 'content-type': request.headers['content-type'] ?? '' } }).formData();
      const file = form.get('file');
      if (!(file instanceof Blob) || form.get('purpose') !== 'fine-tune') return error(400, 'Expected a file with purpose fine-tune.');
      const id = `file-${this.files.size + 1}`;
      this.files.set(id, { filename: (file as File).name, purpose: String(form.get('purpose')), content: await file.text() });
      return send(200, { object: 'file', id, purpose: 'fine-tune', filename: (file as File).name, bytes: file.size, created_at: this.clock, status: 'processed' });
    }

    if (request.method === 'POST' && url.pathname === '/v1/fine_tuning/jobs') {
      const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      if (parsed['model'] !== 'upstream-base') return error(400, `Model ${String(parsed['model'])} is not available for fine-tuning or does not exist.`, 'model_not_available');
      if (typeof parsed['training_file'] !== 'string' || !this.files.has(parsed['training_file'])) return error(400, 'invalid training_file', 'invalid_training_file');
      const id = `ftjob-${this.jobs.size + 1}`;
      const job: FakeJob = { id, status: 'validating_files', body: parsed, polls: 0, events: [], checkpoints: [], fine_tuned_model: null, trained_tokens: null, error: null };
      this.jobs.set(id, job);
      this.event(job, 'info', 'Created fine-tuning job');
      this.event(job, 'info', 'Validating training file');
      return send(200, this.render(job));
    }

    const match = /^\/v1\/fine_tuning\/jobs\/([^/]+)(?:\/(events|checkpoints|cancel|pause|resume))?$/.exec(url.pathname);
    const job = match === null ? undefined : this.jobs.get(decodeURIComponent(match[1]!));
    if (match === null || job === undefined) return error(404, 'Not found.');
    const action = match[2];
    if (request.method === 'GET' && action === undefined) {
      this.advance(job);
      return send(200, this.render(job));
    }
    if (request.method === 'GET' && (action === 'events' || action === 'checkpoints')) {
      // Newest first; `after` pages towards older items, like OpenAI.
      const items: Array<Record<string, unknown>> = action === 'events' ? job.events.map((event) => ({ ...event })).reverse() : [...job.checkpoints].reverse();
      const after = url.searchParams.get('after');
      const start = after === null ? 0 : items.findIndex((item) => item.id === after) + 1;
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 20), PAGE_SIZE);
      const page = items.slice(start, start + limit);
      return send(200, { object: 'list', data: page, has_more: start + limit < items.length });
    }
    if (request.method === 'POST' && action === 'cancel') {
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return error(400, 'Job has already completed.');
      job.status = 'cancelled';
      this.event(job, 'info', 'Job cancelled');
      return send(200, this.render(job));
    }
    if (request.method === 'POST' && action === 'pause') {
      if (!this.pauseSupported) return error(404, 'Not found.');
      job.status = 'paused';
      this.event(job, 'info', 'Job paused');
      return send(200, this.render(job));
    }
    if (request.method === 'POST' && action === 'resume') {
      if (job.status !== 'paused') return error(400, 'Job is not paused.');
      job.status = 'running';
      this.event(job, 'info', 'Job resumed');
      return send(200, this.render(job));
    }
    return error(405, 'Method not allowed.');
  }

  /** validating_files → running (metrics, a checkpoint per epoch; 2 epochs of 3 steps) → the ending. */
  private advance(job: FakeJob): void {
    if (job.status === 'paused' || job.status === 'cancelled' || job.status === 'succeeded' || job.status === 'failed') return;
    job.polls++;
    const step = (n: number): void => {
      const data = { step: n, train_loss: 2 - n * 0.2, train_mean_token_accuracy: 0.5 + n * 0.05, total_steps: 6 };
      job.events.push({ object: 'fine_tuning.job.event', id: `ftevent-${++this.eventCount}`, created_at: this.clock, level: 'info', message: `Step ${n}/6: training loss=${data.train_loss.toFixed(2)}`, type: 'metrics', data });
    };
    const checkpoint = (n: number): void => {
      job.checkpoints.push({
        object: 'fine_tuning.job.checkpoint',
        id: `ftckpt-${n}`,
        created_at: this.clock,
        fine_tuned_model_checkpoint: `ft:upstream-base:org::abc123:ckpt-step-${n}`,
        step_number: n,
        metrics: { step: n, train_loss: 2 - n * 0.2, valid_loss: 2.1 - n * 0.2 },
        fine_tuning_job_id: job.id,
      });
    };
    switch (job.polls) {
      case 1:
        this.event(job, 'info', 'Files validated, moving job to queued state');
        job.status = 'queued';
        break;
      case 2:
        job.status = 'running';
        this.event(job, 'info', 'Fine-tuning job started');
        // Several events in the same second, as OpenAI's are.
        step(1);
        step(2);
        step(3);
        checkpoint(3);
        break;
      case 3:
        if (this.ending === 'fail') {
          job.status = 'failed';
          job.error = { code: 'invalid_training_file', message: 'The job failed due to an invalid training file.', param: 'training_file' };
          this.event(job, 'error', 'The job failed due to an invalid training file.');
          break;
        }
        if (this.ending === 'cancelled') {
          job.status = 'cancelled';
          this.event(job, 'info', 'Job cancelled');
          break;
        }
        step(4);
        step(5);
        break;
      default:
        step(6);
        checkpoint(6);
        this.event(job, 'info', 'New fine-tuned model created');
        this.event(job, 'info', 'The job has successfully completed');
        job.status = 'succeeded';
        job.fine_tuned_model = 'ft:upstream-base:org::abc123';
        job.trained_tokens = 4321;
    }
    this.clock++;
  }

  private event(job: FakeJob, level: FakeEvent['level'], message: string): void {
    job.events.push({ object: 'fine_tuning.job.event', id: `ftevent-${++this.eventCount}`, created_at: this.clock, level, message, type: 'message', data: {} });
  }

  private render(job: FakeJob): Record<string, unknown> {
    return {
      object: 'fine_tuning.job',
      id: job.id,
      model: job.body['model'],
      status: job.status,
      training_file: job.body['training_file'],
      validation_file: job.body['validation_file'] ?? null,
      method: job.body['method'],
      seed: job.body['seed'],
      fine_tuned_model: job.fine_tuned_model,
      trained_tokens: job.trained_tokens,
      error: job.error,
    };
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** Records what the trainer reports; `onReport` may stop or abort the run at a chosen point. */
class RecordingProgress implements TrainerProgress {
  readonly reports: string[] = [];
  readonly metricsSeen: TrainingMetrics[] = [];
  readonly checkpoints: Array<{ step: number; epoch: number; adapterPath: string | null; upstreamModel?: string; metrics: Record<string, number> }> = [];
  state: Record<string, unknown> | null = null;
  stop: 'cancel' | 'pause' | null = null;
  onReport: (report: string) => void = () => {};

  async metrics(metrics: TrainingMetrics): Promise<void> {
    this.metricsSeen.push(metrics);
    this.report(`metrics ${metrics.step}`);
  }
  async message(level: 'info' | 'warn' | 'error', text: string): Promise<void> {
    this.report(`${level} ${text}`);
  }
  async checkpoint(checkpoint: RecordingProgress['checkpoints'][number]): Promise<void> {
    this.checkpoints.push(checkpoint);
    this.report(`checkpoint ${checkpoint.step}`);
  }
  async saveState(state: Record<string, unknown>): Promise<void> {
    this.state = structuredClone(state);
  }
  stopRequested(): 'cancel' | 'pause' | null {
    return this.stop;
  }
  private report(report: string): void {
    this.reports.push(report);
    this.onReport(report);
  }
}

const upstream = new FakeFineTuningUpstream();
const directory = mkdtempSync(join(tmpdir(), 'chatgate-upstream-trainer-'));
const trainingPath = join(directory, 'training.jsonl');
const validationPath = join(directory, 'validation.jsonl');
const trainingText = `${JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] })}\n`.repeat(10);
const validationText = `${JSON.stringify({ messages: [{ role: 'user', content: 'Yo' }, { role: 'assistant', content: 'Hey!' }] })}\n`.repeat(3);

beforeAll(async () => {
  writeFileSync(trainingPath, trainingText);
  writeFileSync(validationPath, validationText);
  await upstream.start();
});
afterAll(async () => {
  await upstream.stop();
  rmSync(directory, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

let controller: AbortController;
beforeEach(() => {
  controller = new AbortController();
});
afterEach(() => controller.abort());

function makeRun(overrides: Partial<TrainerRun> = {}): TrainerRun {
  const baseModel = {
    provider: 'openai-compatible',
    name: 'gpt-small',
    model: 'upstream-base',
    base_url: upstream.baseUrl,
    api_key: API_KEY,
    headers: {},
    timeout_ms: 10_000,
    logprobs: true,
    context_window: 128_000,
    vision: true,
    tokenizer: 'cl100k_base',
    owned_by: 'chatgate',
    fine_tuning: { trainer: 'upstream', poll_seconds: 0.01 },
  } as ModelConfig;
  return {
    jobId: 'ftjob-local-1',
    baseModel,
    trainer: { trainer: 'upstream', poll_seconds: 0.01 },
    trainingPath,
    validationPath,
    workDirectory: directory,
    hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate_multiplier: 1.5 },
    seed: 42,
    suffix: 'support-bot',
    state: null,
    signal: controller.signal,
    ...overrides,
  };
}

const trainer = createUpstreamTrainer({ retryDelayMs: 5, maxRetryDelayMs: 20, stopCheckMs: 5 });

/** What a full run mirrors, in order (the trainer's own notices left out). */
const fullRunReports = [
  'info Upstream: Created fine-tuning job',
  'info Upstream: Validating training file',
  'info Upstream: Files validated, moving job to queued state',
  'info Upstream: Fine-tuning job started',
  'metrics 1',
  'metrics 2',
  'metrics 3',
  'checkpoint 3',
  'metrics 4',
  'metrics 5',
  'metrics 6',
  'info Upstream: New fine-tuned model created',
  'info Upstream: The job has successfully completed',
  'checkpoint 6',
];
const mirrored = (reports: string[]): string[] => reports.filter((report) => !report.includes('upstream fine-tuning job'));

describe('upstream trainer', () => {
  it('uploads, creates, mirrors events and checkpoints once each in order, and returns the fine-tuned model', async () => {
    const progress = new RecordingProgress();
    const result = await trainer.run(makeRun(), progress);

    expect(result).toEqual({ kind: 'upstream', upstreamModel: 'ft:upstream-base:org::abc123', trainedTokens: 4321 });
    expect([...upstream.files.values()]).toEqual([
      { filename: 'training.jsonl', purpose: 'fine-tune', content: trainingText },
      { filename: 'validation.jsonl', purpose: 'fine-tune', content: validationText },
    ]);
    const job = upstream.jobs.get('ftjob-1')!;
    expect(job.body).toEqual({
      model: 'upstream-base',
      training_file: 'file-1',
      validation_file: 'file-2',
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate_multiplier: 1.5 } } },
      seed: 42,
      suffix: 'support-bot',
    });
    expect(progress.reports[0]).toBe('info Created the upstream fine-tuning job ftjob-1 on upstream-base.');
    expect(mirrored(progress.reports)).toEqual(fullRunReports);
    expect(progress.metricsSeen[0]).toEqual({
      step: 1,
      total_steps: 6,
      epoch: expect.closeTo(1 / 3, 9),
      train_loss: expect.closeTo(1.8, 9),
      train_mean_token_accuracy: expect.closeTo(0.55, 9),
    });
    expect(progress.checkpoints.map(({ step, epoch, adapterPath, upstreamModel }) => ({ step, epoch, adapterPath, upstreamModel }))).toEqual([
      { step: 3, epoch: 1, adapterPath: null, upstreamModel: 'ft:upstream-base:org::abc123:ckpt-step-3' },
      { step: 6, epoch: 2, adapterPath: null, upstreamModel: 'ft:upstream-base:org::abc123:ckpt-step-6' },
    ]);
    expect(progress.checkpoints[0]!.metrics).toEqual({ step: 3, train_loss: expect.closeTo(1.4, 9), valid_loss: expect.closeTo(1.5, 9) });
    expect(progress.state).toMatchObject({ upstreamJobId: 'ftjob-1', trainingFileId: 'file-1', validationFileId: 'file-2', checkpointIds: ['ftckpt-3', 'ftckpt-6'] });
  });

  it('resumes polling the same upstream job after a restart, without uploading or creating again', async () => {
    const first = new RecordingProgress();
    first.onReport = (report) => {
      if (report === 'metrics 2') controller.abort(new Error('shutting down'));
    };
    await expect(trainer.run(makeRun(), first)).rejects.toThrow('shutting down');
    expect(first.state).toMatchObject({ upstreamJobId: 'ftjob-1' });

    controller = new AbortController();
    const second = new RecordingProgress();
    const result = await trainer.run(makeRun({ state: first.state, signal: controller.signal }), second);

    expect(result).toMatchObject({ kind: 'upstream', upstreamModel: 'ft:upstream-base:org::abc123' });
    expect(upstream.count('POST /v1/files')).toBe(2);
    expect(upstream.count('POST /v1/fine_tuning/jobs')).toBe(1);
    expect(upstream.jobs.size).toBe(1);
    // Across both runs, every event exactly once and in order, every checkpoint once.
    const reports = mirrored([...first.reports, ...second.reports]);
    const isCheckpoint = (report: string): boolean => report.startsWith('checkpoint');
    expect(reports.filter((report) => !isCheckpoint(report))).toEqual(fullRunReports.filter((report) => !isCheckpoint(report)));
    expect(reports.filter(isCheckpoint)).toEqual(['checkpoint 3', 'checkpoint 6']);
  });

  it('forwards a cancel to the upstream job and stops', async () => {
    const progress = new RecordingProgress();
    progress.onReport = (report) => {
      if (report === 'metrics 1') progress.stop = 'cancel';
    };
    const result = await trainer.run(makeRun(), progress);
    expect(result).toEqual({ kind: 'stopped', reason: 'cancel' });
    expect(upstream.count('POST /v1/fine_tuning/jobs/ftjob-1/cancel')).toBe(1);
    expect(upstream.jobs.get('ftjob-1')!.status).toBe('cancelled');
  });

  it('cancels before creating anything upstream when the stop comes during the uploads', async () => {
    const progress = new RecordingProgress();
    progress.stop = 'cancel';
    expect(await trainer.run(makeRun(), progress)).toEqual({ kind: 'stopped', reason: 'cancel' });
    expect(upstream.jobs.size).toBe(0);
  });

  it('pauses the upstream job, and resumes it on the next run', async () => {
    const first = new RecordingProgress();
    first.onReport = (report) => {
      if (report === 'metrics 3') first.stop = 'pause';
    };
    expect(await trainer.run(makeRun(), first)).toEqual({ kind: 'stopped', reason: 'pause' });
    expect(upstream.jobs.get('ftjob-1')!.status).toBe('paused');
    expect(first.state).toMatchObject({ upstreamJobId: 'ftjob-1', upstreamPaused: true });

    const second = new RecordingProgress();
    const result = await trainer.run(makeRun({ state: first.state }), second);
    expect(result).toMatchObject({ kind: 'upstream', upstreamModel: 'ft:upstream-base:org::abc123' });
    expect(upstream.count('POST /v1/fine_tuning/jobs/ftjob-1/resume')).toBe(1);
    expect(second.reports).toContain('info Resumed the upstream fine-tuning job ftjob-1.');
    expect(second.state).toMatchObject({ upstreamPaused: false });
  });

  it('pauses anyway, with a warning, when the upstream cannot pause', async () => {
    upstream.pauseSupported = false;
    const progress = new RecordingProgress();
    progress.onReport = (report) => {
      if (report === 'metrics 1') progress.stop = 'pause';
    };
    expect(await trainer.run(makeRun(), progress)).toEqual({ kind: 'stopped', reason: 'pause' });
    expect(progress.reports.at(-1)).toMatch(/^warn The upstream did not pause its fine-tuning job ftjob-1 \(.*HTTP 404.*\); it keeps training there/);
    expect(progress.state?.['upstreamPaused']).toBeUndefined();
    expect(upstream.jobs.get('ftjob-1')!.status).toBe('running');
  });

  it('fails with the upstream error when the upstream job fails', async () => {
    upstream.ending = 'fail';
    const progress = new RecordingProgress();
    const failure = await trainer.run(makeRun(), progress).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TrainerError);
    expect(failure).toMatchObject({ code: 'invalid_training_file', message: 'The job failed due to an invalid training file.' });
    expect(progress.reports).toContain('error Upstream: The job failed due to an invalid training file.');
  });

  it('fails with upstream_cancelled when someone cancels the job upstream', async () => {
    upstream.ending = 'cancelled';
    await expect(trainer.run(makeRun(), new RecordingProgress())).rejects.toMatchObject({ code: 'upstream_cancelled' });
  });

  it('retries 5xx answers and dropped connections while polling', async () => {
    upstream.failures.set('GET /v1/fine_tuning/jobs/ftjob-1', 2);
    upstream.resets.set('GET /v1/fine_tuning/jobs/ftjob-1', 1);
    upstream.failures.set('GET /v1/fine_tuning/jobs/ftjob-1/events', 1);
    upstream.failures.set('GET /v1/fine_tuning/jobs/ftjob-1/checkpoints', 1);
    const progress = new RecordingProgress();
    const result = await trainer.run(makeRun(), progress);
    expect(result).toMatchObject({ kind: 'upstream', upstreamModel: 'ft:upstream-base:org::abc123' });
    expect(mirrored(progress.reports)).toEqual(fullRunReports);
    expect(upstream.failures.get('GET /v1/fine_tuning/jobs/ftjob-1')).toBe(0);
    expect(upstream.resets.get('GET /v1/fine_tuning/jobs/ftjob-1')).toBe(0);
  });

  it('retries a 5xx upload, and reports a 4xx create with the upstream message', async () => {
    upstream.failures.set('POST /v1/files', 1);
    const run = makeRun();
    const baseModel = { ...run.baseModel, model: 'not-tunable' } as ModelConfig;
    const failure = await trainer.run({ ...run, baseModel }, new RecordingProgress()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TrainerError);
    expect(failure).toMatchObject({ code: 'model_not_available' });
    expect((failure as Error).message).toContain('Model not-tunable is not available for fine-tuning');
    expect(upstream.count('POST /v1/files')).toBe(3);
    expect(upstream.count('POST /v1/fine_tuning/jobs')).toBe(1);
  });

  it('refuses base models that are not openai-compatible', async () => {
    const run = makeRun();
    const baseModel = { provider: 'mock', name: 'mock-model', stream_delay_ms: 0 } as ModelConfig;
    await expect(trainer.run({ ...run, baseModel }, new RecordingProgress())).rejects.toMatchObject({ code: 'unsupported_model' });
  });
});
