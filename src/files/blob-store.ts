/**
 * Where file bytes live, behind an interface so that object storage (S3, GCS, …) can
 * replace the local disk later. Metadata lives in the database (FileStore); a blob is
 * addressed by a key (the file id).
 */
import { createWriteStream, readSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface PutOptions {
  /** Refuse (BlobTooLargeError) once more than this many bytes arrived; nothing is kept then. */
  maxBytes?: number;
}

export interface BlobStore {
  /** Stores the stream's bytes under `key` (replacing any); all or nothing. Returns the size. */
  put(key: string, source: AsyncIterable<Uint8Array>, options?: PutOptions): Promise<number>;
  /** The bytes, as a stream; null when there is no such blob. */
  get(key: string): Promise<Readable | null>;
  /** Random access to a blob (read many pieces, then close); null when there is no such blob. */
  reader(key: string): Promise<BlobReader | null>;
  /** Removes the blob; false when there was none. */
  delete(key: string): Promise<boolean>;
  /** The size in bytes; null when there is no such blob. */
  size(key: string): Promise<number | null>;
}

export interface BlobReader {
  /** `length` bytes from `offset` (fewer at the end). */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export class BlobTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The file is larger than the limit of ${maxBytes} bytes.`);
    this.name = 'BlobTooLargeError';
  }
}

const KEY = /^[A-Za-z0-9_-]{1,128}$/;
/** The name prefix of a blob being written (never a key: keys have no dot). */
const TEMPORARY_PREFIX = '.tmp-';

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new TypeError(`Invalid blob key ${JSON.stringify(key)}: letters, digits, '-' and '_' only`);
}

function isMissing(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === 'ENOENT';
}

/**
 * Blobs as files in one directory. A put writes to a temporary name, fsyncs it, renames it
 * into place and fsyncs the directory: a crash leaves either the old blob or the new one
 * (and perhaps a `.tmp-` file, never visible as a blob).
 */
export class LocalDiskBlobStore implements BlobStore {
  private ready: Promise<unknown> | undefined;

  constructor(readonly directory: string) {}

  private ensureDirectory(): Promise<unknown> {
    return (this.ready ??= mkdir(this.directory, { recursive: true, mode: 0o700 }));
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.directory, key);
  }

  async put(key: string, source: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<number> {
    const target = this.path(key);
    await this.ensureDirectory();
    const temporary = join(this.directory, `${TEMPORARY_PREFIX}${key}-${randomBytes(6).toString('hex')}`);
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    let size = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
        yield chunk;
      }
    }
    try {
      await pipeline(counted(), createWriteStream(temporary, { mode: 0o600 }));
      const handle = await open(temporary, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw error;
    }
    await this.syncDirectory();
    return size;
  }

  async get(key: string): Promise<Readable | null> {
    const path = this.path(key);
    // Open first, so that a missing blob is a null rather than a stream error.
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    return handle.createReadStream({ highWaterMark: 64 * 1024 });
  }

  async reader(key: string): Promise<BlobReader | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.path(key), 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    return {
      // Synchronous: the pieces read are small (a batch line) and the file local, where an
      // asynchronous read costs far more (a thread-pool round trip) than the copy itself.
      async read(offset, length) {
        const buffer = Buffer.allocUnsafe(length);
        const bytesRead = readSync(handle.fd, buffer, 0, length, offset);
        return bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
      },
      close: () => handle.close(),
    };
  }

  async delete(key: string): Promise<boolean> {
    const path = this.path(key);
    try {
      await rm(path);
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    await this.syncDirectory();
    return true;
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.path(key))).size;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /**
   * Deletes the temporary files of puts that never finished (the process crashed or was
   * killed during an upload) and were last written more than `olderThanMs` ago. A put in
   * progress, here or in another process sharing the directory, writes to its file all the
   * time: with a threshold far above any pause of an upload, it is left alone. Returns the
   * number of files deleted.
   */
  async removeStaleTemporaries(olderThanMs: number, nowMs = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      if (!name.startsWith(TEMPORARY_PREFIX)) continue;
      const path = join(this.directory, name);
      try {
        const stats = await lstat(path);
        if (!stats.isFile() || nowMs - stats.mtimeMs <= olderThanMs) continue;
        await rm(path);
        removed += 1;
      } catch (error) {
        if (!isMissing(error)) throw error; // another process removed it (or its put finished) first
      }
    }
    return removed;
  }

  private async syncDirectory(): Promise<void> {
    try {
      const handle = await open(this.directory, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch {
      // Some platforms cannot fsync a directory; the rename is still atomic.
    }
  }
}
