/**
 * The `upstream` trainer (docs/fine-tuning.md): a job on an openai-compatible base model is
 * handed to the upstream's own fine-tuning API and watched until it ends.
 *
 * 1. The training (and validation) file is uploaded, streamed from disk: `POST /files`
 *    (multipart, purpose `fine-tune`).
 * 2. `POST /fine_tuning/jobs` with the upstream model name, the file ids, the resolved
 *    hyperparameters (`method.supervised.hyperparameters`), seed and suffix. The ids are saved
 *    with `progress.saveState` as soon as they exist, so a restarted run never uploads or
 *    creates again: it polls the same upstream job. The create request is not aborted by
 *    `run.signal` (it is short), so its answer is never lost to a shutdown.
 * 3. Every `poll_seconds`: the job, its new events and its checkpoints. Events are mirrored
 *    into `progress.message` / `progress.metrics` (type `metrics`) in chronological order,
 *    once each (the last mirrored event's id is kept in the state). OpenAI lists events newest
 *    first and `after` pages towards *older* events, so the trainer reads the newest page and
 *    pages back until it reaches the last mirrored event. Messages are prefixed `Upstream: `
 *    (the job runner posts its own "Fine-tuning job started" and the like). Checkpoints become
 *    `progress.checkpoint` (adapterPath null, upstreamModel the checkpoint's model), once each.
 * 4. `succeeded` → `{kind: 'upstream'}`; `failed` → TrainerError(upstream error code or
 *    `upstream_failed`); `cancelled` by someone else → TrainerError('upstream_cancelled').
 *
 * Stopping: 'cancel' → `POST …/cancel` upstream, then `{stopped: cancel}` (also when the
 * upstream refuses, e.g. the job already ended; a warning says so). 'pause' → `POST …/pause`
 * upstream and `{stopped: pause}`; the next run resumes it (`POST …/resume`) if it is still
 * paused. An upstream without pause (4xx, e.g. 404/405) gets a warning and the Chatgate job
 * pauses anyway: the upstream job keeps training (and costing), and whatever it did meanwhile
 * is picked up when the job is resumed. Cancel to stop the spending.
 *
 * Errors: a 4xx from an upload or the create → TrainerError with the upstream's code and
 * message. Network errors, 408/429 and 5xx are retried with exponential backoff: a few times
 * for uploads and stop requests, without limit while polling (a blip never fails the job; a
 * warning is posted once per long outage). The create is retried only when nothing can have
 * been created (the upstream answered 408/429/5xx, or the connection was never made).
 * Uploaded files are left on the upstream.
 */
import type { Dispatcher } from 'undici';
import { FineTuningApi, isRecord, pageLimit, requireId, UpstreamCallError, type Json } from './upstream-fine-tuning-api.js';
import { abortableDelay } from '../util/abortable-delay.js';
import { TrainerError, type Trainer, type TrainerProgress, type TrainerResult, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';

/** Mirrored messages are marked, so that the upstream's "job started" is not taken for Chatgate's. */
const upstreamPrefix = 'Upstream: ';
/** Consecutive failed polls before a warning is posted. */
const outageWarningAfter = 5;

export interface UpstreamTrainerOptions {
  /** undici dispatcher for the upstream calls (default: undici's global one). */
  dispatcher?: Dispatcher;
  /** First pause before a retry; doubles each time up to `maxRetryDelayMs` (defaults 1 s and 60 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Attempts of an upload, the create, a cancel, pause or resume (default 5). Polls retry without limit. */
  attempts?: number;
  /** Longest time between two looks at `progress.stopRequested()` while waiting to poll (default 1 s). */
  stopCheckMs?: number;
}

/** What the trainer keeps in the job's state. */
interface UpstreamState {
  trainingFileId?: string;
  validationFileId?: string;
  upstreamJobId?: string;
  lastEventId?: string;
  lastEventCreatedAt?: number;
  checkpointIds?: string[];
  /** Set when this trainer paused the upstream job (the next run resumes it). */
  upstreamPaused?: boolean;
  totalSteps?: number;
}

export function createUpstreamTrainer(options: UpstreamTrainerOptions = {}): Trainer {
  return {
    run: async (run, progress) => new UpstreamTrainerRun(run, progress, options).execute(),
  };
}

class UpstreamTrainerRun {
  private readonly api: FineTuningApi;
  private readonly state: UpstreamState;
  private readonly pollMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly attempts: number;
  private readonly stopCheckMs: number;
  private checkpointsSupported = true;
  private pausedNoticePosted = false;

  constructor(
    private readonly run: TrainerRun,
    private readonly progress: TrainerProgress,
    options: UpstreamTrainerOptions,
  ) {
    const model = run.baseModel;
    if (model.provider !== 'openai-compatible') {
      throw new TrainerError('unsupported_model', `The model '${model.name}' (provider ${model.provider}) cannot be fine-tuned upstream: only openai-compatible models can.`);
    }
    if (run.trainer.trainer !== 'upstream') throw new TrainerError('unsupported_model', `The upstream trainer was given a '${run.trainer.trainer}' trainer configuration.`);
    this.api = new FineTuningApi(model, options.dispatcher);
    this.state = readState(run.state);
    this.pollMs = run.trainer.poll_seconds * 1000;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
    this.attempts = options.attempts ?? 5;
    this.stopCheckMs = options.stopCheckMs ?? 1000;
  }

  async execute(): Promise<TrainerResult> {
    this.run.signal.throwIfAborted();
    let jobId = this.state.upstreamJobId;
    if (jobId === undefined) {
      const created = await this.create();
      if (typeof created !== 'string') return created;
      jobId = created;
    }
    try {
      if (this.state.upstreamPaused === true) await this.resume(jobId);
      return await this.watch(jobId);
    } catch (error) {
      if (!(error instanceof StopNoticed)) throw error;
      return this.stop(jobId, error.reason);
    }
  }

  /** Uploads what is not uploaded yet and creates the upstream job; a stop before the create ends the run. */
  private async create(): Promise<string | TrainerResult> {
    const { run, progress, state } = this;
    if (state.trainingFileId === undefined) {
      state.trainingFileId = await this.limited('upload the training file', () => this.api.uploadFile(run.trainingPath, run.signal), true);
      await progress.saveState({ ...state });
    }
    if (run.validationPath !== null && state.validationFileId === undefined) {
      const validationPath = run.validationPath;
      state.validationFileId = await this.limited('upload the validation file', () => this.api.uploadFile(validationPath, run.signal), true);
      await progress.saveState({ ...state });
    }
    const stop = progress.stopRequested();
    if (stop !== null) return { kind: 'stopped', reason: stop };
    run.signal.throwIfAborted();

    const { n_epochs, batch_size, learning_rate_multiplier } = run.hyperparameters;
    const body: Json = {
      model: this.api.upstreamModel,
      training_file: state.trainingFileId,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs, batch_size, learning_rate_multiplier } } },
      seed: run.seed,
    };
    if (state.validationFileId !== undefined) body['validation_file'] = state.validationFileId;
    if (run.suffix !== null) body['suffix'] = run.suffix;
    const job = await this.limited('create the fine-tuning job', () => this.api.createJob(body), false);
    const jobId = requireId(job, 'fine-tuning job');
    state.upstreamJobId = jobId;
    await progress.saveState({ ...state });
    await progress.message('info', `Created the upstream fine-tuning job ${jobId} on ${this.api.upstreamModel}.`);
    return jobId;
  }

  /** A later run of a job this trainer paused: resume the upstream job if it is still paused. */
  private async resume(jobId: string): Promise<void> {
    const job = await this.polled(() => this.api.job(jobId, this.run.signal));
    if (job['status'] === 'paused') {
      await this.limited('resume the upstream job', () => this.api.action(jobId, 'resume', this.run.signal), true);
      await this.progress.message('info', `Resumed the upstream fine-tuning job ${jobId}.`);
    }
    this.state.upstreamPaused = false;
    await this.progress.saveState({ ...this.state });
  }

  private async watch(jobId: string): Promise<TrainerResult> {
    for (;;) {
      const stop = this.progress.stopRequested();
      if (stop !== null) return this.stop(jobId, stop);

      const job = await this.polled(() => this.api.job(jobId, this.run.signal));
      const status = job['status'];
      await this.mirrorEvents(jobId, job);
      if (status !== 'validating_files' && status !== 'queued') await this.mirrorCheckpoints(jobId);

      switch (status) {
        case 'succeeded': {
          const model = job['fine_tuned_model'];
          if (typeof model !== 'string' || model === '') throw new TrainerError('upstream_invalid_response', `The upstream job ${jobId} succeeded without a fine_tuned_model.`);
          const trainedTokens = job['trained_tokens'];
          return { kind: 'upstream', upstreamModel: model, trainedTokens: typeof trainedTokens === 'number' ? trainedTokens : 0 };
        }
        case 'failed': {
          const error = isRecord(job['error']) ? job['error'] : {};
          const code = typeof error['code'] === 'string' && error['code'] !== '' ? error['code'] : 'upstream_failed';
          const message = typeof error['message'] === 'string' && error['message'] !== '' ? error['message'] : `The upstream fine-tuning job ${jobId} failed.`;
          throw new TrainerError(code, message);
        }
        case 'cancelled':
          throw new TrainerError('upstream_cancelled', `The upstream fine-tuning job ${jobId} was cancelled upstream.`);
        case 'paused':
          if (!this.pausedNoticePosted) {
            this.pausedNoticePosted = true;
            await this.progress.message('warn', `The upstream fine-tuning job ${jobId} is paused upstream; waiting for it to be resumed there.`);
          }
          break;
        default:
          this.pausedNoticePosted = false;
      }
      await this.pause(this.pollMs);
    }
  }

  private async stop(jobId: string, reason: 'cancel' | 'pause'): Promise<TrainerResult> {
    const action = reason === 'cancel' ? 'cancel' : 'pause';
    try {
      await this.limited(`${action} the upstream job`, () => this.api.action(jobId, action, reason === 'cancel' ? null : this.run.signal), true);
      if (reason === 'pause') this.state.upstreamPaused = true;
      await this.progress.message('info', reason === 'cancel' ? `Cancelled the upstream fine-tuning job ${jobId}.` : `Paused the upstream fine-tuning job ${jobId}.`);
    } catch (error) {
      if (!(error instanceof TrainerError)) throw error;
      const consequence =
        reason === 'cancel'
          ? 'it may still be running there.'
          : 'it keeps training there, and what it does meanwhile is picked up when this job is resumed.';
      await this.progress.message('warn', `The upstream did not ${action} its fine-tuning job ${jobId} (${error.message}); ${consequence}`);
    }
    await this.progress.saveState({ ...this.state });
    return { kind: 'stopped', reason };
  }

  /** Mirrors the events newer than the last mirrored one, oldest first. */
  private async mirrorEvents(jobId: string, job: Json): Promise<void> {
    const { state } = this;
    const newestFirst: Json[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    pages: for (;;) {
      const page = await this.polled(() => this.api.list(jobId, 'events', after, this.run.signal));
      const data = Array.isArray(page['data']) ? page['data'].filter(isRecord) : [];
      let added = 0;
      for (const event of data) {
        const id = event['id'];
        if (typeof id !== 'string' || seen.has(id)) continue;
        const createdAt = event['created_at'];
        if (id === state.lastEventId) break pages;
        if (state.lastEventCreatedAt !== undefined && typeof createdAt === 'number' && createdAt < state.lastEventCreatedAt) break pages;
        seen.add(id);
        newestFirst.push(event);
        added++;
      }
      const last = data.at(-1)?.['id'];
      if (page['has_more'] !== true || added === 0 || typeof last !== 'string') break;
      after = last;
    }
    const nEpochs = nEpochsOf(job) ?? this.run.hyperparameters.n_epochs;
    for (const event of newestFirst.reverse()) {
      await this.mirrorEvent(event, nEpochs);
      state.lastEventId = event['id'] as string;
      if (typeof event['created_at'] === 'number') state.lastEventCreatedAt = event['created_at'];
      await this.progress.saveState({ ...state });
    }
  }

  private async mirrorEvent(event: Json, nEpochs: number): Promise<void> {
    const data = isRecord(event['data']) ? event['data'] : {};
    if (event['type'] === 'metrics' && typeof data['step'] === 'number' && typeof data['train_loss'] === 'number') {
      const metrics: TrainingMetrics = { step: data['step'], train_loss: data['train_loss'] };
      const totalSteps = numberOr(data['total_steps']) ?? this.state.totalSteps;
      if (totalSteps !== undefined) {
        metrics.total_steps = totalSteps;
        this.state.totalSteps = totalSteps;
      }
      const epoch = numberOr(data['epoch']) ?? (totalSteps !== undefined && totalSteps > 0 ? Math.min(nEpochs, (data['step'] * nEpochs) / totalSteps) : undefined);
      if (epoch !== undefined) metrics.epoch = epoch;
      for (const key of ['train_mean_token_accuracy', 'valid_loss', 'valid_mean_token_accuracy'] as const) {
        const value = numberOr(data[key]);
        if (value !== undefined) metrics[key] = value;
      }
      await this.progress.metrics(metrics);
      return;
    }
    const message = event['message'];
    if (typeof message !== 'string' || message === '') return;
    const level = event['level'] === 'warn' || event['level'] === 'error' ? event['level'] : 'info';
    await this.progress.message(level, `${upstreamPrefix}${message}`);
  }

  /** Mirrors the checkpoints not mirrored yet, lowest step first. */
  private async mirrorCheckpoints(jobId: string): Promise<void> {
    if (!this.checkpointsSupported) return;
    const known = new Set(this.state.checkpointIds ?? []);
    const found: Json[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      let page: Json;
      try {
        page = await this.polled(() => this.api.list(jobId, 'checkpoints', after, this.run.signal));
      } catch (error) {
        // An upstream without the checkpoints endpoint: the job goes on without checkpoints.
        if (error instanceof UpstreamTrainerError && error.status !== undefined && [404, 405, 501].includes(error.status)) {
          this.checkpointsSupported = false;
          return;
        }
        throw error;
      }
      const data = Array.isArray(page['data']) ? page['data'].filter(isRecord) : [];
      let added = 0;
      for (const checkpoint of data) {
        const id = checkpoint['id'];
        if (typeof id !== 'string' || seen.has(id)) continue;
        seen.add(id);
        added++;
        if (!known.has(id)) found.push(checkpoint);
      }
      const last = data.at(-1)?.['id'];
      if (page['has_more'] !== true || added === 0 || typeof last !== 'string') break;
      after = last;
    }
    found.sort((a, b) => (numberOr(a['step_number']) ?? 0) - (numberOr(b['step_number']) ?? 0));
    for (const checkpoint of found) {
      const metrics: Record<string, number> = {};
      if (isRecord(checkpoint['metrics'])) {
        for (const [key, value] of Object.entries(checkpoint['metrics'])) if (typeof value === 'number' && Number.isFinite(value)) metrics[key] = value;
      }
      const step = numberOr(checkpoint['step_number']) ?? metrics['step'] ?? 0;
      const totalSteps = this.state.totalSteps;
      const nEpochs = this.run.hyperparameters.n_epochs;
      // OpenAI's checkpoints carry no epoch: worked out from the steps, else counted (one per epoch).
      const epoch =
        metrics['epoch'] ?? (totalSteps !== undefined && totalSteps > 0 ? Math.max(1, Math.round((step * nEpochs) / totalSteps)) : known.size + 1);
      const upstreamModel = checkpoint['fine_tuned_model_checkpoint'];
      await this.progress.checkpoint({
        step,
        epoch,
        adapterPath: null,
        ...(typeof upstreamModel === 'string' ? { upstreamModel } : {}),
        metrics,
      });
      known.add(checkpoint['id'] as string);
      this.state.checkpointIds = [...known];
      await this.progress.saveState({ ...this.state });
    }
  }

  /** A call retried a few times; not `idempotent` (the create): only when it surely did nothing upstream. */
  private async limited<T>(what: string, call: () => Promise<T>, idempotent: boolean): Promise<T> {
    let delay = this.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof UpstreamCallError)) throw error;
        const again = error.retriable && attempt < this.attempts && (idempotent || error.status !== null || !error.maybeSent);
        if (!again) {
          const detail = error.status === null && !idempotent && error.maybeSent ? ' The upstream job may have been created nonetheless; check the upstream.' : '';
          throw trainerError(error, `Could not ${what}: ${error.message}${detail}`);
        }
        await abortableDelay(delay, this.run.signal);
        delay = Math.min(delay * 2, this.maxRetryDelayMs);
      }
    }
  }

  /** A poll: retried without limit on network errors, 408, 429 and 5xx; other answers end the job. */
  private async polled<T>(call: () => Promise<T>): Promise<T> {
    let delay = this.retryDelayMs;
    for (let failures = 1; ; failures++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof UpstreamCallError)) throw error;
        if (!error.retriable) throw trainerError(error, error.message);
        const stop = this.progress.stopRequested();
        if (stop !== null) throw new StopNoticed(stop);
        if (failures === outageWarningAfter) {
          await this.progress.message('warn', `The upstream has failed ${failures} times in a row (${error.message}); still trying.`);
        }
        await this.pause(delay);
        delay = Math.min(delay * 2, this.maxRetryDelayMs);
      }
    }
  }

  /** Waits, in slices, so that a stop request or the run's signal is noticed quickly. */
  private async pause(milliseconds: number): Promise<void> {
    const until = Date.now() + milliseconds;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0 || this.progress.stopRequested() !== null) return;
      await abortableDelay(Math.min(left, this.stopCheckMs), this.run.signal);
    }
  }
}

/** A stop request noticed while the upstream was failing: the run stops instead of retrying. */
class StopNoticed extends Error {
  constructor(readonly reason: 'cancel' | 'pause') {
    super(`Stop requested (${reason})`);
  }
}

/** A TrainerError carrying the HTTP status it came from (to tell an absent endpoint). */
class UpstreamTrainerError extends TrainerError {
  constructor(
    code: string,
    message: string,
    readonly status: number | undefined,
  ) {
    super(code, message);
  }
}

function trainerError(error: UpstreamCallError, message: string): TrainerError {
  return new UpstreamTrainerError(error.code, message, error.status ?? undefined);
}

function readState(state: Record<string, unknown> | null): UpstreamState {
  if (state === null) return {};
  const text = (key: string): string | undefined => (typeof state[key] === 'string' && state[key] !== '' ? state[key] : undefined);
  const result: UpstreamState = {};
  const assign = <K extends keyof UpstreamState>(key: K, value: UpstreamState[K] | undefined): void => {
    if (value !== undefined) result[key] = value;
  };
  assign('trainingFileId', text('trainingFileId'));
  assign('validationFileId', text('validationFileId'));
  assign('upstreamJobId', text('upstreamJobId'));
  assign('lastEventId', text('lastEventId'));
  assign('lastEventCreatedAt', numberOr(state['lastEventCreatedAt']));
  assign('totalSteps', numberOr(state['totalSteps']));
  if (Array.isArray(state['checkpointIds'])) result.checkpointIds = state['checkpointIds'].filter((id): id is string => typeof id === 'string');
  if (state['upstreamPaused'] === true) result.upstreamPaused = true;
  return result;
}

function nEpochsOf(job: Json): number | undefined {
  const method = isRecord(job['method']) ? job['method'] : {};
  const supervised = isRecord(method['supervised']) ? method['supervised'] : {};
  const fromMethod = isRecord(supervised['hyperparameters']) ? numberOr(supervised['hyperparameters']['n_epochs']) : undefined;
  const fromTop = isRecord(job['hyperparameters']) ? numberOr(job['hyperparameters']['n_epochs']) : undefined;
  return fromMethod ?? fromTop;
}


function numberOr(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}


