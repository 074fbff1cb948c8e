/**
 * Runs fine-tuning jobs on the durable job queue (kind `fine_tune`), through OpenAI's
 * statuses: validating_files (the files checked by OpenAI's rules, each problem with its line,
 * hyperparameters resolved) → queued → running (the base model's trainer, trainer-spec.ts) →
 * succeeded (the fine-tuned model registered and served) | failed | cancelled; `paused` stops
 * the trainer after it saved its state, `resume` queues the job again. A job interrupted by a
 * crash is claimed again once its lease lapses and the trainer resumes from its saved state.
 * Events and checkpoints go to the job's event streams.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { randomAlphanumeric } from '../openai/ids.js';
import type { ModelConfig } from '../config/schema.js';
import type { BlobStore } from '../files/blob-store.js';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { JobContext, JobHandler } from '../jobs/worker.js';
import type { TokenCounters } from '../tokens/token-counter.js';
import type { Job } from '../storage/job-records.js';
import { mutateResource, type ResourceStore } from '../storage/resource-records.js';
import type { FileStore } from '../storage/spec.js';
import { derivedFileId, recordDerivedFile } from '../files/derived-files.js';
import { resolveHyperparameters } from './dataset/auto-hyperparameters.js';
import { ChatTokenizer } from './dataset/chat-tokenizer.js';
import { gptTokenCounter } from './dataset/gpt-token-count.js';
import { estimateTrainedTokens, validateDataset, type DatasetValidation } from './dataset/validate-dataset.js';
import {
  asFineTuning, FINAL_FINE_TUNING_STATUSES, FINE_TUNING_KIND, fineTunedModelName,
  type CheckpointData, type EventData, type FineTuningJobData, type FineTuningRecord, type FineTuningStatus,
} from './fine-tuning-object.js';
import { TrainerError, type Trainer, type TrainerProgress, type TrainingMetrics } from './trainer-spec.js';

export const FINE_TUNE_JOB_KIND = 'fine_tune';

export interface FineTuneJobPayload {
  fineTuningJobId: string;
}

export interface FineTuningDependencies {
  resources: ResourceStore;
  files: FileStore;
  blobs: BlobStore;
  models: ModelRegistry;
  tokenCounters: TokenCounters;
  trainers: { local: Trainer; upstream: Trainer; command: Trainer };
  /** Jobs' directories live here. */
  directory: string;
  logger: Logger;
  /** A job succeeded: register its model now (other instances pick it up when they sync). */
  onSucceeded?: (record: FineTuningRecord) => void;
  /** How often a running job's status (cancel, pause) is looked at. Default 1 s. */
  watchMs?: number;
}

/** Problems listed in the job's error message; every one is an event. */
const ERRORS_IN_MESSAGE = 5;

function isFinal(status: string): boolean {
  return (FINAL_FINE_TUNING_STATUSES as readonly string[]).includes(status);
}

export function jobDirectory(directory: string, id: string): string {
  return join(resolve(directory), id);
}

async function load(resources: ResourceStore, id: string): Promise<FineTuningRecord | null> {
  const record = await resources.get(FINE_TUNING_KIND, id);
  return record === null ? null : asFineTuning(record);
}

export function updateJob(
  resources: ResourceStore,
  id: string,
  change: (status: FineTuningStatus, data: FineTuningJobData) => { status: FineTuningStatus; data: Partial<FineTuningJobData> } | null,
): Promise<FineTuningRecord | null> {
  return mutateResource(resources, FINE_TUNING_KIND, id, (record) => {
    const next = change(record.status as FineTuningStatus, record.data as FineTuningJobData);
    return next === null ? null : { status: next.status, data: { ...record.data, ...next.data } };
  }).then((record) => (record === null ? null : asFineTuning(record)));
}

/** Adds a `message` event (random id) or a `metrics` event (one per step: a resumed trainer repeating a step adds nothing). */
export async function addJobEvent(resources: ResourceStore, jobId: string, event: EventData): Promise<void> {
  const id =
    event.type === 'metrics' && typeof event.data.step === 'number'
      ? `ftevent-${createHash('sha256').update(`${jobId}:metrics:${event.data.step}`).digest('hex').slice(0, 24)}`
      : `ftevent-${randomAlphanumeric(24)}`;
  await resources.addEvent(FINE_TUNING_KIND, jobId, 'events', { id, data: event, createdAt: Date.now() });
}

const info = (message: string, data: Record<string, unknown> = {}): EventData => ({ level: 'info', message, type: 'message', data });

/** Stores a blob as a file of the job's directory (trainers read local files). */
async function copyBlob(blobs: BlobStore, fileId: string, path: string): Promise<void> {
  const stream = await blobs.get(fileId);
  if (stream === null) throw new TrainerError('file_not_found', `The file ${fileId} no longer exists.`);
  await pipeline(stream, createWriteStream(path));
}

interface TokenCounting {
  countTokens: (example: import('./dataset/example-types.js').TrainingExample) => { tokens: number; trainedTokens: number } | Promise<{ tokens: number; trainedTokens: number }>;
  contextWindow: number;
  dispose: () => Promise<void>;
}

/** Counts with the base model's own tokenizer and template where it is local, else with its tiktoken encoding. */
async function tokenCounting(base: ModelConfig, dependencies: FineTuningDependencies): Promise<TokenCounting> {
  if (base.provider === 'llama-cpp') {
    const tokenizer = await ChatTokenizer.load({ modelPath: resolve(base.path), ...(base.chat_template ? { chatTemplate: base.chat_template } : {}) });
    const limits = [base.context_size, tokenizer.trainContextSize, base.fine_tuning?.trainer === 'local' ? base.fine_tuning.max_sequence_length : undefined].filter(
      (value): value is number => typeof value === 'number' && value > 0,
    );
    return { countTokens: tokenizer.countTokens, contextWindow: Math.min(...limits, base.context_window), dispose: () => tokenizer.dispose() };
  }
  const count = await gptTokenCounter(dependencies.tokenCounters, base.tokenizer);
  return { countTokens: count, contextWindow: base.context_window, dispose: async () => undefined };
}

async function validateFile(
  dependencies: FineTuningDependencies,
  fileId: string,
  counting: TokenCounting,
  minExamples: number,
): Promise<DatasetValidation | null> {
  const stream = await dependencies.blobs.get(fileId);
  if (stream === null) return null;
  return validateDataset(stream, { contextWindow: counting.contextWindow, countTokens: counting.countTokens, minExamples });
}

function describeErrors(kind: string, validation: DatasetValidation): string {
  const listed = validation.errors.slice(0, ERRORS_IN_MESSAGE).map((error) => (error.line === null ? error.message : `line ${error.line}: ${error.message}`));
  const more = validation.errors.length > ERRORS_IN_MESSAGE ? ` (and ${validation.errors.length - ERRORS_IN_MESSAGE} more: see the job's events)` : '';
  return `The job failed due to an invalid ${kind} file. ${listed.join('; ')}${more}`;
}

async function fail(dependencies: FineTuningDependencies, id: string, error: { code: string; message: string; param: string | null }): Promise<void> {
  const updated = await updateJob(dependencies.resources, id, (status) =>
    isFinal(status) ? null : { status: 'failed', data: { error, finished_at: Math.floor(Date.now() / 1000), estimated_finish: null } },
  );
  if (updated?.status === 'failed') await addJobEvent(dependencies.resources, id, { level: 'error', message: error.message, type: 'message', data: { code: error.code } });
}

/** validating_files → queued, or failed with every problem reported. */
async function validate(dependencies: FineTuningDependencies, record: FineTuningRecord, base: ModelConfig): Promise<boolean> {
  const data = record.data;
  await addJobEvent(dependencies.resources, record.id, info(`Validating training file: ${data.training_file}${data.validation_file ? ` and validation file: ${data.validation_file}` : ''}`));
  const counting = await tokenCounting(base, dependencies);
  let training: DatasetValidation | null;
  let validation: DatasetValidation | null = null;
  try {
    training = await validateFile(dependencies, data.training_file, counting, 10);
    if (data.validation_file !== null) validation = await validateFile(dependencies, data.validation_file, counting, 1);
  } finally {
    await counting.dispose();
  }
  for (const [param, result, fileId] of [['training_file', training, data.training_file], ['validation_file', validation, data.validation_file]] as const) {
    if (fileId === null) continue;
    if (result === null) {
      await fail(dependencies, record.id, { code: 'file_not_found', message: `The file ${fileId} no longer exists.`, param });
      return false;
    }
    if (!result.ok) {
      for (const error of result.errors) {
        await addJobEvent(dependencies.resources, record.id, {
          level: 'error',
          message: error.line === null ? error.message : `Line ${error.line}: ${error.message}`,
          type: 'message',
          data: { code: error.code, line: error.line, file: fileId },
        });
      }
      const kind = param === 'training_file' ? 'training' : 'validation';
      await fail(dependencies, record.id, { code: `invalid_${kind}_file`, message: describeErrors(kind, result), param });
      return false;
    }
  }
  const hyperparameters = resolveHyperparameters(
    {
      n_epochs: data.hyperparameters.n_epochs,
      batch_size: data.hyperparameters.batch_size,
      learning_rate_multiplier: data.hyperparameters.learning_rate_multiplier,
    },
    { examples: training!.examples },
  );
  const directory = jobDirectory(dependencies.directory, record.id);
  await mkdir(directory, { recursive: true });
  await copyBlob(dependencies.blobs, data.training_file, join(directory, 'training.jsonl'));
  if (data.validation_file !== null) await copyBlob(dependencies.blobs, data.validation_file, join(directory, 'validation.jsonl'));
  const estimated = estimateTrainedTokens(training!, hyperparameters.n_epochs);
  const updated = await updateJob(dependencies.resources, record.id, (status) => (status === 'validating_files' ? { status: 'queued', data: { hyperparameters } } : null));
  await addJobEvent(
    dependencies.resources,
    record.id,
    info(`Files validated: ${training!.examples} examples, ${training!.tokens.total} tokens; about ${estimated} tokens will be trained. Moving job to queued state.`, {
      examples: training!.examples,
      tokens: training!.tokens.total,
      estimated_trained_tokens: estimated,
      hyperparameters,
    }),
  );
  return updated?.status === 'queued';
}

/** The trainer's view of the job: events, checkpoints, state, and whether to stop. */
function progressOf(dependencies: FineTuningDependencies, record: FineTuningRecord, modelName: string): { progress: TrainerProgress; stop(): void } {
  let requested: 'cancel' | 'pause' | null = null;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    load(dependencies.resources, record.id)
      .then((current) => {
        if (current === null || current.status === 'cancelled') requested = 'cancel';
        else if (current.status === 'paused') requested = 'pause';
      })
      .catch((error: unknown) => dependencies.logger.warn({ err: error, job: record.id }, 'Could not look at a fine-tuning job'))
      .finally(() => (busy = false));
  }, dependencies.watchMs ?? 1_000);
  // estimated_finish: from the pace since the first step seen by this run, refreshed at most every 5 s.
  let firstSeen: { step: number; at: number } | undefined;
  let estimatedAt = 0;
  const estimateFinish = async (metrics: TrainingMetrics): Promise<void> => {
    const now = Date.now();
    if (firstSeen === undefined) firstSeen = { step: metrics.step, at: now };
    if (!metrics.total_steps || metrics.step <= firstSeen.step || now - estimatedAt < 5_000) return;
    estimatedAt = now;
    const perStep = (now - firstSeen.at) / (metrics.step - firstSeen.step);
    const finish = Math.round((now + perStep * Math.max(0, metrics.total_steps - metrics.step)) / 1000);
    await updateJob(dependencies.resources, record.id, (status) => (status === 'running' ? { status, data: { estimated_finish: finish } } : null));
  };
  const progress: TrainerProgress = {
    async metrics(metrics: TrainingMetrics) {
      const parts = [`Step ${metrics.step}${metrics.total_steps ? `/${metrics.total_steps}` : ''}: training loss=${metrics.train_loss.toFixed(4)}`];
      if (metrics.valid_loss !== undefined) parts.push(`validation loss=${metrics.valid_loss.toFixed(4)}`);
      await addJobEvent(dependencies.resources, record.id, { level: 'info', message: parts.join(', '), type: 'metrics', data: { ...metrics } });
      await estimateFinish(metrics);
    },
    async message(level, text) {
      await addJobEvent(dependencies.resources, record.id, { level, message: text, type: 'message', data: {} });
    },
    async checkpoint(checkpoint) {
      const data: CheckpointData = {
        step_number: checkpoint.step,
        fine_tuned_model_checkpoint: `${modelName}:ckpt-step-${checkpoint.step}`,
        metrics: { step: checkpoint.step, ...checkpoint.metrics },
        adapter_path: checkpoint.adapterPath,
        upstream_model: checkpoint.upstreamModel ?? null,
      };
      const id = `ftckpt-${createHash('sha256').update(`${record.id}:checkpoint:${checkpoint.step}`).digest('hex').slice(0, 24)}`;
      await dependencies.resources.addEvent(FINE_TUNING_KIND, record.id, 'checkpoints', { id, data, createdAt: Date.now() });
    },
    async saveState(state) {
      await updateJob(dependencies.resources, record.id, (status) => (isFinal(status) ? null : { status, data: { trainer_state: state } }));
    },
    stopRequested: () => requested,
  };
  return { progress, stop: () => clearInterval(timer) };
}

/** The metrics events as CSV (OpenAI's result file). */
async function writeResultFile(dependencies: FineTuningDependencies, record: FineTuningRecord): Promise<string | null> {
  const events = await dependencies.resources.listEvents(FINE_TUNING_KIND, record.id, 'events', { limit: 100_000, order: 'asc' });
  const rows = events.map((event) => event.data as EventData).filter((event) => event.type === 'metrics');
  if (rows.length === 0) return null;
  const columns = ['step', 'train_loss', 'train_accuracy', 'valid_loss', 'valid_mean_token_accuracy'];
  const value = (data: Record<string, unknown>, column: string) => {
    const field = column === 'train_accuracy' ? data.train_mean_token_accuracy : data[column];
    return typeof field === 'number' ? String(field) : '';
  };
  const csv = [columns.join(','), ...rows.map((row) => columns.map((column) => value(row.data, column)).join(','))].join('\n') + '\n';
  const id = derivedFileId(record.id, 'results');
  const bytes = await dependencies.blobs.put(id, (async function* () {
    yield Buffer.from(csv);
  })());
  await recordDerivedFile(dependencies.files, { id, project: record.project, purpose: 'fine-tune-results', filename: 'step_metrics.csv', bytes, createdAt: Date.now() });
  return id;
}

/** The configuration the fine-tuned model is served with: the base model's, plus the adapter or the upstream's model. */
function servedModel(base: ModelConfig, name: string, project: string, result: { kind: 'adapter'; adapterPath: string } | { kind: 'upstream'; upstreamModel: string }): Record<string, unknown> {
  const { fine_tuning: _ignored, ...rest } = base as ModelConfig & { fine_tuning?: unknown };
  if (result.kind === 'adapter') {
    if (base.provider !== 'llama-cpp') throw new TrainerError('unsupported_model', `An adapter can only be served on a llama-cpp base model; ${base.name} is ${base.provider}.`);
    return { ...rest, name, owned_by: project, preload: false, path: resolve(base.path), lora: [...base.lora, { path: result.adapterPath, scale: 1 }] };
  }
  return { ...rest, name, owned_by: project, model: result.upstreamModel };
}

async function train(dependencies: FineTuningDependencies, record: FineTuningRecord, base: ModelConfig, context: JobContext): Promise<void> {
  const trainerConfig = base.fine_tuning!;
  const trainer = dependencies.trainers[trainerConfig.trainer];
  const directory = jobDirectory(dependencies.directory, record.id);
  const modelName = fineTunedModelName(record.data.model, record.project, record.data.suffix, record.id);
  const hyperparameters = record.data.hyperparameters as { n_epochs: number; batch_size: number; learning_rate_multiplier: number };
  const watcher = progressOf(dependencies, record, modelName);
  let result;
  try {
    result = await trainer.run(
      {
        jobId: record.id,
        baseModel: base,
        trainer: trainerConfig,
        trainingPath: join(directory, 'training.jsonl'),
        validationPath: record.data.validation_file === null ? null : join(directory, 'validation.jsonl'),
        workDirectory: directory,
        hyperparameters,
        seed: record.data.seed,
        suffix: record.data.suffix,
        state: record.data.trainer_state,
        signal: context.signal,
      },
      watcher.progress,
    );
  } finally {
    watcher.stop();
  }
  if (result.kind === 'stopped') return;
  const served = servedModel(base, modelName, record.project, result);
  const resultFile = await writeResultFile(dependencies, record);
  const finished = await updateJob(dependencies.resources, record.id, (status) =>
    status !== 'running'
      ? null
      : {
          status: 'succeeded',
          data: {
            fine_tuned_model: modelName,
            served_model: served,
            trained_tokens: result.trainedTokens,
            finished_at: Math.floor(Date.now() / 1000),
            estimated_finish: null,
            result_files: resultFile === null ? [] : [resultFile],
          },
        },
  );
  if (finished?.status === 'succeeded') {
    await addJobEvent(dependencies.resources, record.id, info(`New fine-tuned model created: ${modelName}`));
    await addJobEvent(dependencies.resources, record.id, info('The job has successfully completed'));
    dependencies.onSucceeded?.(finished);
  }
}

async function runJob(dependencies: FineTuningDependencies, job: Job, context: JobContext): Promise<unknown> {
  const { fineTuningJobId } = job.payload as FineTuneJobPayload;
  let record = await load(dependencies.resources, fineTuningJobId);
  // Gone, finished, paused, or superseded by the queue job of a resume.
  if (record === null || isFinal(record.status) || record.status === 'paused' || record.data.job_id !== job.id) return { skipped: true };
  const base = dependencies.models.find(record.data.model)?.config;
  if (base?.fine_tuning === undefined) {
    await fail(dependencies, record.id, { code: 'model_not_available', message: `The model ${record.data.model} is no longer configured for fine-tuning.`, param: 'model' });
    return { failed: true };
  }
  if (record.status === 'validating_files' && !(await validate(dependencies, record, base))) return { failed: true };
  record = (await updateJob(dependencies.resources, record.id, (status) => (status === 'queued' ? { status: 'running', data: {} } : null)))!;
  if (record.status !== 'running') return { skipped: true };
  await addJobEvent(dependencies.resources, record.id, info(record.data.trainer_state === null ? 'Fine-tuning job started' : 'Fine-tuning job resumed from its last saved state'));
  try {
    await train(dependencies, record, base, context);
  } catch (error) {
    if (error instanceof TrainerError) {
      await fail(dependencies, record.id, { code: error.code, message: error.message, param: null });
      return { failed: true };
    }
    throw error;
  }
  return { done: true };
}

export function createFineTuneJobHandler(dependencies: FineTuningDependencies): JobHandler {
  return async (job, context) => {
    try {
      return await runJob(dependencies, job, context);
    } catch (error) {
      if (!context.signal.aborted) dependencies.logger.error({ err: error, job: job.id }, 'A fine-tuning job failed');
      // The last attempt: the job must not stay running for ever.
      if (job.attempts >= job.maxAttempts && !context.signal.aborted) {
        const message = error instanceof Error ? error.message : String(error);
        await fail(dependencies, (job.payload as FineTuneJobPayload).fineTuningJobId, { code: 'internal_error', message, param: null }).catch(() => undefined);
      }
      throw error;
    }
  };
}
