/**
 * The background worker of a Chatgate process: runs jobs from the durable queue (batches),
 * helps other processes with their running batches, and stops gracefully on shutdown (jobs in
 * flight are released for another worker, or for this one after a restart). Off with
 * `batches.worker: false` (an API-only instance).
 */
import type { Logger } from 'pino';
import { assistBatches, BATCH_JOB_KIND, createBatchJobHandler, type BatchJobDependencies } from './batches/batch-job.js';
import type { InternalFetch } from './batches/batch-request.js';
import { ModelConcurrency } from './batches/model-concurrency.js';
import type { Config } from './config/schema.js';
import type { BlobStore } from './files/blob-store.js';
import type { ModelRegistry } from './gateway/model-registry.js';
import { Worker } from './jobs/worker.js';
import { createFineTuneJobHandler, FINE_TUNE_JOB_KIND, type FineTuningDependencies } from './fine-tuning/fine-tuning-job.js';
import type { Store } from './storage/spec.js';

export interface BackgroundWork {
  /** Look at the queue now (a job was just enqueued or cancelled here). */
  wake(): void;
  stop(): Promise<void>;
}

export interface BackgroundWorkOptions {
  config: Config;
  store: Store;
  blobs: BlobStore;
  models: ModelRegistry;
  logger: Logger;
  fetch: InternalFetch;
  /** Fine-tuning jobs (their trainers, directory, …); absent: none run here. */
  fineTuning?: FineTuningDependencies;
}

export function startBackgroundWork(options: BackgroundWorkOptions): BackgroundWork {
  const batchWork = startBatchWork(options);
  const fineTuning = options.fineTuning;
  const concurrent = options.config.fine_tuning.concurrent_jobs;
  const fineTuningWorker =
    fineTuning === undefined || concurrent === 0
      ? undefined
      : new Worker({
          queue: options.store.jobs,
          handlers: { [FINE_TUNE_JOB_KIND]: createFineTuneJobHandler(fineTuning) },
          concurrency: concurrent,
          leaseMs: options.config.fine_tuning.lease_seconds * 1000,
          // A trainer stops at its next step and saves its state; then the job is released.
          stopGraceMs: 15_000,
          onError: (error) => options.logger.warn({ err: error }, 'The fine-tuning worker hit an error; carrying on'),
        });
  fineTuningWorker?.start();
  return {
    wake: () => {
      batchWork.wake();
      fineTuningWorker?.poke();
    },
    async stop() {
      await Promise.all([batchWork.stop(), fineTuningWorker?.stop(0)]);
    },
  };
}

function startBatchWork(options: BackgroundWorkOptions): BackgroundWork {
  const { config, store, logger } = options;
  if (!config.batches.worker) return { wake: () => undefined, stop: async () => undefined };
  const batches = config.batches;
  const limits = new ModelConcurrency(batches.max_concurrency, (name) => options.models.find(name)?.config.batch_concurrency ?? batches.concurrency_per_model);
  const dependencies: BatchJobDependencies = {
    resources: store.resources,
    queue: store.jobs,
    files: store.files,
    blobs: options.blobs,
    keys: store.keys,
    fetch: options.fetch,
    limits,
    modelExists: (name) => options.models.find(name) !== undefined,
    maxAttempts: batches.max_attempts,
    maxRequests: batches.max_requests,
    itemConcurrency: batches.max_concurrency,
    logger,
    retryBaseMs: batches.retry_initial_delay_ms,
  };
  const worker = new Worker({
    queue: store.jobs,
    handlers: { [BATCH_JOB_KIND]: createBatchJobHandler(dependencies) },
    concurrency: batches.concurrent_batches,
    leaseMs: batches.lease_seconds * 1000,
    stopGraceMs: 5_000,
    onError: (error) => logger.warn({ err: error }, 'The job worker hit an error; carrying on'),
  });
  worker.start();
  const assistStop = new AbortController();
  const assisting = assistBatches(dependencies, worker, assistStop.signal);
  return {
    wake: () => worker.poke(),
    async stop() {
      assistStop.abort(new Error('Chatgate is stopping'));
      await Promise.all([worker.stop(), assisting]);
    },
  };
}
