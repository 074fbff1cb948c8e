/**
 * Removes what interrupted uploads left in the files directory (`.tmp-…` files of a process
 * that crashed mid-upload): once at start and then periodically, by age, so that an upload
 * in progress (here or in another instance sharing the directory) is never touched.
 */
import type { Logger } from 'pino';
import type { LocalDiskBlobStore } from './blob-store.js';

export interface TemporarySweepOptions {
  blobs: Pick<LocalDiskBlobStore, 'removeStaleTemporaries' | 'directory'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** A temporary file not written for this long is a leftover. Default 1 hour. */
  maxAgeMs?: number;
  /** How often to look again after the first sweep (at start). Default 10 minutes. */
  intervalMs?: number;
}

export interface TemporarySweep {
  /** The sweep at start (resolves when it is done; never rejects). */
  readonly first: Promise<void>;
  stop(): void;
}

export const DEFAULT_TEMPORARY_MAX_AGE_MS = 60 * 60 * 1000;

export function startTemporarySweep(options: TemporarySweepOptions): TemporarySweep {
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_TEMPORARY_MAX_AGE_MS;
  const sweep = async (): Promise<void> => {
    try {
      const removed = await options.blobs.removeStaleTemporaries(maxAgeMs);
      if (removed > 0) options.logger.info({ removed, directory: options.blobs.directory }, 'Removed files left by interrupted uploads');
    } catch (error) {
      options.logger.warn({ err: error, directory: options.blobs.directory }, 'Could not remove files left by interrupted uploads');
    }
  };
  const first = sweep();
  let running: Promise<void> = first;
  const timer = setInterval(() => {
    running = running.then(sweep);
  }, options.intervalMs ?? 10 * 60 * 1000);
  timer.unref();
  return { first, stop: () => clearInterval(timer) };
}
