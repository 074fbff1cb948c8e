/**
 * Writes a finished batch's output and error files (purpose `batch_output`), streamed from
 * the job's items in input order: 2xx answers to the output file, everything else to the
 * error file, one JSON line each in OpenAI's format. For an expired batch, the requests that
 * never ran go to the error file as `batch_expired`. File ids derive from the batch id, so a
 * worker that crashed while writing them writes the same files again rather than new ones.
 */
import type { BlobStore } from '../files/blob-store.js';
import type { JobItem, JobQueue } from '../storage/job-records.js';
import type { FileStore } from '../storage/spec.js';
import { derivedFileId, recordDerivedFile } from '../files/derived-files.js';
import { newBatchRequestId, type BatchResultLine } from './batch-request.js';

const PAGE = 1000;
async function* itemsOf(queue: JobQueue, jobId: string): AsyncGenerator<JobItem> {
  let afterKey: string | undefined;
  for (;;) {
    const page = await queue.listItems(jobId, { limit: PAGE, ...(afterKey === undefined ? {} : { afterKey }) });
    yield* page;
    if (page.length < PAGE) return;
    afterKey = page.at(-1)!.itemKey;
  }
}

function customIdOfKey(key: string): string | null {
  return key.startsWith('c:') ? key.slice(2) : null;
}

export interface BatchFiles {
  outputFileId: string | null;
  errorFileId: string | null;
  completed: number;
  failed: number;
}

interface FileWriter {
  lines: number;
  write(line: string): void;
  /** Resolves once the lines written so far went to the blob store (backpressure). */
  drained(): Promise<void>;
  finish(): Promise<string | null>;
}

/** A file fed line by line: the blob store reads the lines as they come, never all at once. */
function fileWriter(blobs: BlobStore, files: FileStore, project: string, id: string, filename: string): FileWriter {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let onDrained: (() => void) | undefined;
  let ended = false;
  let bytes = 0;
  const source = (async function* (): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (queue.length > 0) {
        const chunk = Buffer.from(queue.splice(0, queue.length).join(''), 'utf8');
        bytes += chunk.length;
        yield chunk;
        continue;
      }
      onDrained?.();
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  })();
  let stored: Promise<number> | undefined;
  const writer: FileWriter = {
    lines: 0,
    write(line) {
      if (writer.lines === 0) {
        stored = blobs.put(id, source);
        stored.catch(() => undefined); // awaited (and thrown) in finish()
      }
      writer.lines++;
      queue.push(`${line}\n`);
      wake?.();
    },
    drained() {
      if (queue.length === 0 || stored === undefined) return Promise.resolve();
      return Promise.race([new Promise<void>((resolve) => (onDrained = resolve)), stored.then(() => undefined)]);
    },
    async finish() {
      ended = true;
      wake?.();
      if (stored === undefined) return null;
      await stored;
      const record = { id, project, purpose: 'batch_output', filename, bytes, createdAt: Date.now() };
      await recordDerivedFile(files, record);
      return id;
    },
  };
  return writer;
}

export async function writeBatchFiles(options: {
  batchId: string;
  project: string;
  jobId: string;
  queue: JobQueue;
  files: FileStore;
  blobs: BlobStore;
  /** Requests without an outcome become `batch_expired` errors (else they are left out). */
  expired: boolean;
}): Promise<BatchFiles> {
  const output = fileWriter(options.blobs, options.files, options.project, derivedFileId(options.batchId, 'output'), `${options.batchId}_output.jsonl`);
  const errors = fileWriter(options.blobs, options.files, options.project, derivedFileId(options.batchId, 'error'), `${options.batchId}_error.jsonl`);
  let completed = 0;
  let failed = 0;
  let seen = 0;
  for await (const item of itemsOf(options.queue, options.jobId)) {
    if (++seen % PAGE === 0) await Promise.all([output.drained(), errors.drained()]);
    if (item.state === 'succeeded') {
      completed++;
      output.write(JSON.stringify(item.result));
    } else if (item.state === 'failed') {
      failed++;
      const line: BatchResultLine =
        item.result !== null && typeof item.result === 'object'
          ? (item.result as BatchResultLine)
          : { id: newBatchRequestId(), custom_id: customIdOfKey(item.itemKey), response: null, error: { code: 'internal_error', message: item.error ?? 'failed' } };
      errors.write(JSON.stringify(line));
    } else if (options.expired) {
      const line: BatchResultLine = {
        id: newBatchRequestId(),
        custom_id: customIdOfKey(item.itemKey),
        response: null,
        error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
      };
      errors.write(JSON.stringify(line));
    }
  }
  const [outputFileId, errorFileId] = [await output.finish(), await errors.finish()];
  return { outputFileId, errorFileId, completed, failed };
}
