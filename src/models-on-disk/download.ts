/**
 * Downloads a file to `<file>.part`, resuming what an earlier attempt left there: a `Range`
 * request (with `If-Range` naming the ETag or Last-Modified saved in `<file>.part.json`, so a
 * changed remote file is not spliced onto the old bytes); 206 appends, 200 starts over. The
 * sha256 is computed while writing (the kept bytes are hashed first), never in memory at once.
 * A dropped connection is retried (resuming) a few times; an abort leaves the .part in place.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PullError, describeError } from './errors.js';
import { NetworkError, headerValue, httpRequest, sha256FromEtag, statusError, type HttpResponse } from './http.js';

export interface PartInfo {
  url: string;
  etag?: string | undefined;
  lastModified?: string | undefined;
  total?: number | null | undefined;
  sha256?: string | null | undefined;
}

export interface DownloadOptions {
  url: string;
  partPath: string;
  authorization?: string | undefined;
  authOrigin?: string | undefined;
  environment: NodeJS.ProcessEnv;
  signal?: AbortSignal | undefined;
  /** Further attempts after a dropped connection. */
  retries?: number;
  retryDelayMs?: number;
  onStart?(info: { total: number | null; resumedFrom: number }): void;
  onProgress?(bytes: number): void;
  log?(line: string): void;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  /** The sha256 the server announced (x-linked-etag or a 64-hex ETag), if any. */
  remoteSha256: string | null;
}

export function sidecarPath(partPath: string): string {
  return `${partPath}.json`;
}

export async function readPartInfo(partPath: string): Promise<PartInfo | null> {
  try {
    const info = JSON.parse(await readFile(sidecarPath(partPath), 'utf8')) as PartInfo;
    return info && typeof info === 'object' && typeof info.url === 'string' ? info : null;
  } catch {
    return null;
  }
}

export async function removePart(partPath: string): Promise<void> {
  await rm(partPath, { force: true });
  await rm(sidecarPath(partPath), { force: true });
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

/** sha256 of a file, streamed. */
export async function hashFile(path: string, hash: Hash = createHash('sha256'), signal?: AbortSignal): Promise<Hash> {
  await pipeline(createReadStream(path), new Writable({ write: (chunk: Buffer, _encoding, done) => (hash.update(chunk), done()) }), { signal });
  return hash;
}

/** Writes chunks to an open file and hashes exactly the bytes that reached it. */
class HashingFileWriter extends Writable {
  written = 0;
  constructor(
    private readonly handle: FileHandle,
    private readonly hash: Hash,
    private readonly onChunk: (bytes: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    (async () => {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
      this.hash.update(chunk);
      this.written += chunk.length;
      this.onChunk(chunk.length);
    })().then(() => done(), (error: unknown) => done(error as Error));
  }
}

class RestartDownload extends Error {}

function parseContentRange(value: string | undefined): { start: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!match) return null;
  return { start: Number(match[1]), total: match[3] === '*' ? null : Number(match[3]) };
}

function isStrongEtag(etag: string | undefined): etag is string {
  return !!etag && !etag.startsWith('W/');
}

async function attempt(options: DownloadOptions, fresh: boolean): Promise<DownloadResult> {
  const { partPath } = options;
  let existing = fresh ? 0 : await fileSize(partPath);
  const saved = existing > 0 ? await readPartInfo(partPath) : null;
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (existing > 0) {
    headers.range = `bytes=${existing}-`;
    if (saved && isStrongEtag(saved.etag)) headers['if-range'] = saved.etag;
    else if (saved?.lastModified) headers['if-range'] = saved.lastModified;
  }
  // Hash the kept bytes before asking, so the connection does not idle meanwhile.
  const hash = createHash('sha256');
  if (existing > 0) {
    options.log?.(`Resuming: checking the ${existing} bytes already in ${partPath}`);
    await hashFile(partPath, hash, options.signal);
  }
  const response: HttpResponse = await httpRequest(options.url, {
    method: 'GET',
    headers,
    authorization: options.authorization,
    authOrigin: options.authOrigin,
    signal: options.signal,
  });
  const etag = headerValue(response.headers, 'etag');
  const remoteSha256 = sha256FromEtag(response.linkedEtag) ?? sha256FromEtag(etag);
  let total: number | null = null;
  let append = false;
  if (response.statusCode === 206 && existing > 0) {
    const range = parseContentRange(headerValue(response.headers, 'content-range'));
    const changed =
      !range ||
      range.start !== existing ||
      (saved?.total != null && range.total !== null && range.total !== saved.total) ||
      (saved?.sha256 && remoteSha256 && saved.sha256 !== remoteSha256);
    if (changed) {
      await response.body.dump().catch(() => undefined);
      options.log?.('The remote file does not match the partial download: starting over');
      throw new RestartDownload();
    }
    total = range.total;
    append = true;
  } else if (response.statusCode === 416 && existing > 0) {
    await response.body.dump().catch(() => undefined);
    const range = /^bytes \*\/(\d+)$/.exec(headerValue(response.headers, 'content-range')?.trim() ?? '');
    if (range && Number(range[1]) === existing && (!saved?.total || saved.total === existing)) {
      options.onStart?.({ total: existing, resumedFrom: existing });
      return { bytes: existing, sha256: hash.digest('hex'), remoteSha256: remoteSha256 ?? saved?.sha256 ?? null };
    }
    throw new RestartDownload();
  } else if (response.statusCode === 200 || response.statusCode === 206) {
    if (existing > 0) options.log?.('The server did not resume the partial download: starting over');
    existing = 0;
    const length = Number(headerValue(response.headers, 'content-length'));
    total = headerValue(response.headers, 'content-length') !== undefined && Number.isSafeInteger(length) ? length : response.linkedSize;
    if (response.statusCode === 206) {
      // A 206 to a request without Range: take its total if it starts at 0.
      const range = parseContentRange(headerValue(response.headers, 'content-range'));
      if (!range || range.start !== 0) {
        await response.body.dump().catch(() => undefined);
        throw new PullError(`unexpected partial response from ${options.url}`);
      }
      total = range.total;
    }
  } else {
    await response.body.dump().catch(() => undefined);
    throw statusError(response.statusCode, options.url, options.environment);
  }

  const info: PartInfo = {
    url: options.url,
    etag: etag ?? saved?.etag,
    lastModified: headerValue(response.headers, 'last-modified') ?? saved?.lastModified,
    total,
    sha256: remoteSha256 ?? saved?.sha256 ?? null,
  };
  await writeFile(sidecarPath(partPath), `${JSON.stringify(info)}\n`);

  const freshHash = append ? hash : createHash('sha256');
  const handle = await open(partPath, append ? 'a' : 'w');
  options.onStart?.({ total, resumedFrom: existing });
  let received = existing;
  const writer = new HashingFileWriter(handle, freshHash, (bytes) => {
    received += bytes;
    options.onProgress?.(received);
  });
  try {
    await pipeline(response.body, writer, { signal: options.signal });
  } catch (error) {
    if (options.signal?.aborted || error instanceof PullError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code && /^E(NOSPC|ACCES|PERM|ROFS|IO|DQUOT|FBIG)$/.test(code)) throw new PullError(`cannot write ${partPath}: ${describeError(error)}`);
    throw new NetworkError(`download interrupted: ${describeError(error)}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (total !== null && received < total) throw new NetworkError(`download interrupted: got ${received} of ${total} bytes`);
  if (total !== null && received > total) throw new PullError(`the server sent more bytes (${received}) than announced (${total})`);
  return { bytes: received, sha256: freshHash.digest('hex'), remoteSha256: info.sha256 ?? null };
}

export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const retries = options.retries ?? 3;
  let failures = 0;
  let restarts = 0;
  let fresh = false;
  for (;;) {
    try {
      return await attempt(options, fresh);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (error instanceof RestartDownload) {
        if (++restarts > 2) throw new PullError(`the server keeps answering inconsistent ranges for ${options.url}`);
        await removePart(options.partPath);
        fresh = true;
        continue;
      }
      if (!(error instanceof NetworkError) || failures >= retries) throw error;
      failures++;
      fresh = false;
      const delay = (options.retryDelayMs ?? 1000) * 2 ** (failures - 1);
      options.log?.(`${error.message}; retrying in ${Math.round(delay / 100) / 10} s (${failures}/${retries})`);
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}

/** Size and sha256 of the remote file from a HEAD request (for an existing local file). */
export async function probe(
  options: Pick<DownloadOptions, 'url' | 'authorization' | 'authOrigin' | 'environment' | 'signal'>,
): Promise<{ size: number | null; sha256: string | null }> {
  const response = await httpRequest(options.url, {
    method: 'HEAD',
    headers: { 'accept-encoding': 'identity' },
    authorization: options.authorization,
    authOrigin: options.authOrigin,
    signal: options.signal,
  });
  await response.body.dump().catch(() => undefined);
  if (response.statusCode !== 200) throw statusError(response.statusCode, options.url, options.environment);
  const lengthText = headerValue(response.headers, 'content-length');
  const length = Number(lengthText);
  return {
    size: response.linkedSize ?? (lengthText !== undefined && Number.isSafeInteger(length) ? length : null),
    sha256: sha256FromEtag(response.linkedEtag) ?? sha256FromEtag(headerValue(response.headers, 'etag')),
  };
}
