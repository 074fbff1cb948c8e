/**
 * The upstream trainer against a small fake of OpenAI's fine-tuning API (node:http): files are
 * uploaded and the job created once, events mirrored once each in order (the fake lists them
 * newest first in pages of 3, as OpenAI does with `after`), checkpoints mirrored, a restart
 * with saved state resumes polling, cancel and pause are forwarded, upstream failures and
 * create errors become TrainerErrors, and 5xx blips while polling are retried.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../config/schema.js';
import { TrainerError, type TrainerProgress, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';
import { createUpstreamTrainer } from './upstream-trainer.js';
import { FAKE_FINE_TUNING_API_KEY as API_KEY, FakeFineTuningUpstream } from '../../test/fixtures/fake-fine-tuning-upstream.js';


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
