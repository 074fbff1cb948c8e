/**
 * Runs batches on the durable job queue (kind `batch`). The worker holding a batch's job
 * checks the input (validating → in_progress, or failed when no line is usable), runs the
 * lines as job items through the live pipeline (batch-request.ts), follows cancellation and
 * the completion window, and finally writes the output and error files (finalizing →
 * completed / expired; cancelling → cancelled). Other Chatgate processes sharing the database
 * help with a running batch's items (`assistBatches`): items are leased one by one, each
 * recorded once. A crash (even SIGKILL) loses nothing: leases expire, another worker (or the
 * restarted one) claims the job again and carries on with the items that have no outcome.
 */
import type { Logger } from 'pino';
import { MASTER_PRINCIPAL, type Principal } from '../auth/principal.js';
import { principalOfKey } from '../keys/authenticator.js';
import type { BlobReader, BlobStore } from '../files/blob-store.js';
import { ItemFailure, type JobContext, type JobHandler, type Worker } from '../jobs/worker.js';
import type { Job, JobItem, JobQueue } from '../storage/job-records.js';
import { mutateResource, type ResourceStore } from '../storage/resource-records.js';
import type { FileStore, KeyStore } from '../storage/spec.js';
import { checkBatchInput, itemKeyOf, requestBody, type InputCheck, type ValidLine } from './batch-input.js';
import { asBatch, BATCH_KIND, FINAL_BATCH_STATUSES, unixSeconds, type BatchData, type BatchLineError, type BatchRecord, type BatchStatus } from './batch-object.js';
import { writeBatchFiles } from './batch-output.js';
import { newBatchRequestId, runBatchLine, type BatchResultLine, type CallerCheck, type InternalFetch } from './batch-request.js';
import type { ModelConcurrency } from './model-concurrency.js';
import { abortableDelay } from '../util/abortable-delay.js';

export const BATCH_JOB_KIND = 'batch';

/** Who runs a batch's requests: recorded when the batch is created. */
export interface BatchCaller {
  principal: Principal;
  clientIp: string | null;
  origin: string | null;
}

export interface BatchJobPayload {
  batchId: string;
  caller: BatchCaller;
}

export interface BatchJobDependencies {
  resources: ResourceStore;
  queue: JobQueue;
  files: FileStore;
  blobs: BlobStore;
  keys: KeyStore;
  fetch: InternalFetch;
  limits: ModelConcurrency;
  modelExists: (name: string) => boolean;
  maxAttempts: number;
  maxRequests: number;
  /** Items one process runs at once for one batch (the model limits apply within). */
  itemConcurrency: number;
  logger: Logger;
  /** How often the batch's status (cancel) and progress are looked at. Default 500 ms. */
  watchMs?: number;
  /** First retry delay of a failing request (tests shorten it). */
  retryBaseMs?: number;
}

/** Line errors kept in the batch object; all of them are in the error file. */
const MAX_REPORTED_ERRORS = 1000;

async function loadBatch(resources: ResourceStore, id: string): Promise<BatchRecord | null> {
  const record = await resources.get(BATCH_KIND, id);
  return record === null ? null : asBatch(record);
}

function updateBatch(resources: ResourceStore, id: string, change: (status: BatchStatus, data: BatchData) => { status: BatchStatus; data: Partial<BatchData> } | null) {
  return mutateResource(resources, BATCH_KIND, id, (record) => {
    const next = change(record.status as BatchStatus, record.data as BatchData);
    return next === null ? null : { status: next.status, data: { ...record.data, ...next.data } };
  });
}

function isFinal(status: string): boolean {
  return (FINAL_BATCH_STATUSES as readonly string[]).includes(status);
}

/** The caller as it is now: a key revoked or expired since the batch was created stops its requests. */
function createCallerCheck(keys: KeyStore, caller: BatchCaller): CallerCheck {
  let cached: { at: number; value: Awaited<ReturnType<CallerCheck>> } | undefined;
  const refusal = (code: string, message: string) => ({
    refusal: { status_code: 401, request_id: '', body: { error: { message, type: 'invalid_request_error', param: null, code } } },
  });
  return async () => {
    if (cached !== undefined && Date.now() - cached.at < 1_000) return cached.value;
    let value: Awaited<ReturnType<CallerCheck>>;
    if (caller.principal.isMaster) value = { principal: MASTER_PRINCIPAL };
    else {
      const record = await keys.get(caller.principal.keyId);
      if (record === null) value = refusal('invalid_api_key', 'The API key that created this batch no longer exists.');
      else if (record.revokedAt !== null) value = refusal('key_revoked', 'The API key that created this batch has been revoked.');
      else if (record.expiresAt !== null && record.expiresAt <= Date.now()) value = refusal('key_expired', 'The API key that created this batch has expired.');
      // A token's narrowed rights stay as they were when the batch was created.
      else value = { principal: caller.principal.tokenId === undefined ? principalOfKey(record) : caller.principal };
    }
    cached = { at: Date.now(), value };
    return value;
  };
}

/** Runs the lines of a batch (as holder or helper) until none is left, or `shouldStop`. */
function lineRunner(dependencies: BatchJobDependencies, batch: BatchRecord, check: InputCheck, caller: BatchCaller, stopWaiting: AbortSignal) {
  const byKey = new Map<string, ValidLine>();
  const invalidByKey = new Map<string, BatchResultLine>();
  for (const line of check.lines) {
    if (line.kind === 'request') byKey.set(itemKeyOf(line), line);
    else invalidByKey.set(itemKeyOf(line), { id: newBatchRequestId(), custom_id: line.customId, response: null, error: { code: line.error.code, message: line.error.message } });
  }
  const currentCaller = createCallerCheck(dependencies.keys, caller);
  // One reader of the input file for all the lines this process runs (opened on first use).
  let input: Promise<BlobReader | null> | undefined;
  const run = async (item: JobItem, signal: AbortSignal): Promise<unknown> => {
    const invalid = invalidByKey.get(item.itemKey);
    if (invalid !== undefined) throw new ItemFailure(invalid.error!.message, invalid);
    const line = byKey.get(item.itemKey);
    if (line === undefined) throw new ItemFailure('The line is no longer in the input file', null);
    const reader = await (input ??= dependencies.blobs.reader(batch.data.input_file_id));
    const body = reader === null ? null : await requestBody(reader, line);
    if (body === null) {
      const error = { code: 'file_not_found', message: `The input file ${batch.data.input_file_id} no longer exists.` };
      throw new ItemFailure(error.message, { id: newBatchRequestId(), custom_id: line.customId, response: null, error } satisfies BatchResultLine);
    }
    const { result, ok } = await runBatchLine(
      line,
      body,
      batch.data.endpoint,
      { check: currentCaller, clientIp: caller.clientIp, origin: caller.origin },
      { fetch: dependencies.fetch, limits: dependencies.limits, maxAttempts: dependencies.maxAttempts, ...(dependencies.retryBaseMs === undefined ? {} : { retryBaseMs: dependencies.retryBaseMs }) },
      signal,
      stopWaiting,
    );
    if (!ok) throw new ItemFailure(`status ${result.response?.status_code ?? 'none'}`, result);
    return result;
  };
  const close = async (): Promise<void> => {
    const reader = await input?.catch(() => null);
    await reader?.close();
  };
  return { run, close };
}

async function readInput(dependencies: BatchJobDependencies, batch: BatchRecord): Promise<InputCheck | BatchLineError> {
  const input = await dependencies.blobs.get(batch.data.input_file_id);
  if (input === null) return { code: 'file_not_found', message: `The input file ${batch.data.input_file_id} no longer exists.`, param: 'input_file_id', line: null };
  return checkBatchInput(input, { endpoint: batch.data.endpoint, modelExists: dependencies.modelExists, maxRequests: dependencies.maxRequests });
}

/**
 * Watches the batch while its items run: stop once it is being cancelled or its window has
 * passed; refreshes `request_counts` on the way.
 */
function watchBatch(dependencies: BatchJobDependencies, batch: BatchRecord, jobId: string, updateCounts: boolean) {
  const stopping = new AbortController();
  const stop = () => stopping.abort(new Error('The batch is stopping'));
  let busy = false;
  const expiresAtMs = batch.data.expires_at * 1000;
  // Requests waiting for a slot or a retry stop at the window's end; those in flight finish.
  const expiry = setTimeout(stop, Math.max(0, Math.min(expiresAtMs - Date.now(), 2 ** 31 - 1)));
  const look = async () => {
    if (busy) return;
    busy = true;
    try {
      const current = await loadBatch(dependencies.resources, batch.id);
      if (current === null || current.status !== 'in_progress') stop();
      else if (updateCounts) {
        const counts = await dependencies.queue.itemCounts(jobId);
        const total = current.data.request_counts.total;
        if (counts.succeeded !== current.data.request_counts.completed || counts.failed !== current.data.request_counts.failed) {
          await updateBatch(dependencies.resources, batch.id, (status, data) =>
            status === 'in_progress' ? { status, data: { request_counts: { total: data.request_counts.total || total, completed: counts.succeeded, failed: counts.failed } } } : null,
          );
        }
      }
    } catch (error) {
      dependencies.logger.warn({ err: error, batch: batch.id }, 'Could not look at a running batch');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), dependencies.watchMs ?? 500);
  return {
    signal: stopping.signal,
    shouldStop: () => stopping.signal.aborted || Date.now() >= expiresAtMs,
    stop: () => {
      clearInterval(timer);
      clearTimeout(expiry);
    },
  };
}

async function finish(dependencies: BatchJobDependencies, batch: BatchRecord, jobId: string): Promise<void> {
  const current = await loadBatch(dependencies.resources, batch.id);
  if (current === null || isFinal(current.status)) return;
  const cancelled = current.status === 'cancelling';
  const counts = await dependencies.queue.itemCounts(jobId);
  const expired = !cancelled && counts.pending + counts.running > 0;
  if (!cancelled) {
    await updateBatch(dependencies.resources, batch.id, (status, data) =>
      status === 'in_progress' || status === 'finalizing' ? { status: 'finalizing', data: { finalizing_at: data.finalizing_at ?? unixSeconds() } } : null,
    );
  }
  const files = await writeBatchFiles({
    batchId: batch.id,
    project: batch.project,
    jobId,
    queue: dependencies.queue,
    files: dependencies.files,
    blobs: dependencies.blobs,
    expired,
  });
  const now = unixSeconds();
  await updateBatch(dependencies.resources, batch.id, (status, data) => {
    if (isFinal(status)) return null;
    const finalStatus: BatchStatus = status === 'cancelling' ? 'cancelled' : expired ? 'expired' : 'completed';
    const stamp = finalStatus === 'cancelled' ? { cancelled_at: now } : finalStatus === 'expired' ? { expired_at: now } : { completed_at: now };
    return {
      status: finalStatus,
      data: {
        ...stamp,
        output_file_id: files.outputFileId,
        error_file_id: files.errorFileId,
        request_counts: { total: data.request_counts.total, completed: files.completed, failed: files.failed + (expired ? counts.pending + counts.running : 0) },
      },
    };
  });
}

async function failBatch(dependencies: BatchJobDependencies, batchId: string, errors: BatchLineError[], total: number): Promise<void> {
  await updateBatch(dependencies.resources, batchId, (status) =>
    isFinal(status)
      ? null
      : {
          status: 'failed',
          data: { failed_at: unixSeconds(), errors: { object: 'list', data: errors.slice(0, MAX_REPORTED_ERRORS) }, request_counts: { total, completed: 0, failed: total } },
        },
  );
}

async function runBatch(dependencies: BatchJobDependencies, job: Job, context: JobContext): Promise<unknown> {
  const payload = job.payload as BatchJobPayload;
  let batch = await loadBatch(dependencies.resources, payload.batchId);
  if (batch === null || isFinal(batch.status)) return { batch: payload.batchId, skipped: true };
  if (batch.status === 'cancelling' && batch.data.in_progress_at === null) {
    await finish(dependencies, batch, job.id);
    return { batch: batch.id };
  }
  const check = await readInput(dependencies, batch);
  if (!('lines' in check)) {
    await failBatch(dependencies, batch.id, [check], 0);
    return { batch: batch.id, failed: check.code };
  }
  if (check.fileError !== null || check.valid === 0) {
    const errors = check.fileError !== null ? [check.fileError] : check.lines.flatMap((line) => (line.kind === 'invalid' ? [line.error] : []));
    await failBatch(dependencies, batch.id, errors, check.lines.length);
    return { batch: batch.id, failed: 'no usable lines' };
  }
  // Items: one per line, in file order (added once; a restarted worker finds them there).
  const keys = check.lines.map(itemKeyOf);
  for (let start = 0; start < keys.length; start += 1000) await dependencies.queue.addItems(job.id, keys.slice(start, start + 1000));
  const lineErrors = check.lines.flatMap((line) => (line.kind === 'invalid' ? [line.error] : []));
  batch =
    asBatch(
      (await updateBatch(dependencies.resources, batch.id, (status) =>
        status === 'validating'
          ? {
              status: 'in_progress',
              data: {
                in_progress_at: unixSeconds(),
                errors: lineErrors.length > 0 ? { object: 'list', data: lineErrors.slice(0, MAX_REPORTED_ERRORS) } : null,
                invalid_lines: lineErrors.length,
                request_counts: { total: check.lines.length, completed: 0, failed: 0 },
              },
            }
          : null,
      ))!,
    );
  if (batch.status === 'in_progress') {
    const watch = watchBatch(dependencies, batch, job.id, true);
    const runner = lineRunner(dependencies, batch, check, payload.caller, watch.signal);
    try {
      await context.processItems(runner.run, { concurrency: dependencies.itemConcurrency, shouldStop: watch.shouldStop });
    } finally {
      watch.stop();
      await runner.close();
    }
  }
  await finish(dependencies, batch, job.id);
  return { batch: batch.id };
}

export function createBatchJobHandler(dependencies: BatchJobDependencies): JobHandler {
  return async (job, context) => {
    try {
      return await runBatch(dependencies, job, context);
    } catch (error) {
      // The last attempt: the batch must not stay in progress for ever.
      if (job.attempts >= job.maxAttempts && !context.signal.aborted) {
        const message = error instanceof Error ? error.message : String(error);
        await failBatch(dependencies, (job.payload as BatchJobPayload).batchId, [{ code: 'internal_error', message, param: null, line: null }], 0).catch(() => undefined);
      }
      throw error;
    }
  };
}

/**
 * Helps with batches other processes hold: every `intervalMs`, picks running batches this
 * process is not already working on and runs their items too. Stops with `signal`.
 */
export function assistBatches(dependencies: BatchJobDependencies, worker: Worker, signal: AbortSignal, intervalMs = 1_000): Promise<void> {
  const helping = new Map<string, Promise<void>>();
  const help = async (batch: BatchRecord, job: Job): Promise<void> => {
    const payload = job.payload as BatchJobPayload;
    const check = await readInput(dependencies, batch);
    if (!('lines' in check) || check.fileError !== null) return;
    const watch = watchBatch(dependencies, batch, job.id, false);
    const runner = lineRunner(dependencies, batch, check, payload.caller, watch.signal);
    try {
      await worker.assist(job, signal, runner.run, { concurrency: dependencies.itemConcurrency, shouldStop: watch.shouldStop });
    } finally {
      watch.stop();
      await runner.close();
    }
  };
  return (async () => {
    while (!signal.aborted) {
      try {
        const running = (await dependencies.resources.listByStatus(BATCH_KIND, ['in_progress'], 20)).map(asBatch);
        for (const batch of running) {
          if (helping.has(batch.id) || helping.size >= 2) continue;
          const job = await dependencies.queue.get(batch.data.job_id);
          // Only jobs another worker holds: this process's own batches run in their handler.
          if (job === null || job.state !== 'running' || job.lockedBy === worker.id) continue;
          const run = help(batch, job)
            .catch((error: unknown) => {
              if (!signal.aborted) dependencies.logger.warn({ err: error, batch: batch.id }, 'Helping with a batch failed');
            })
            .finally(() => helping.delete(batch.id));
          helping.set(batch.id, run);
        }
      } catch (error) {
        dependencies.logger.warn({ err: error }, 'Could not look for running batches');
      }
      // The pause removes its abort listener when it ends: one added per look would pile up
      // on the long-lived signal (a MaxListenersExceededWarning after ten looks).
      await abortableDelay(intervalMs, signal).catch(() => undefined);
    }
    await Promise.all(helping.values());
  })();
}
