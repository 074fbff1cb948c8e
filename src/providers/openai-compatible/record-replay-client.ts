/**
 * Record and replay at the upstream HTTP level (docs/record-replay.md). `RecordReplayClient`
 * stands in for the UpstreamClient of the openai-compatible provider:
 *
 * - `record`: every request goes upstream; its exchange (method, path, body as sent, status,
 *   the response headers worth keeping and every body chunk as received, with its timing) is
 *   appended to the cassette once the response body has been read to its end. Secrets never
 *   reach the cassette: no request header but content-type/accept is kept, and the values of
 *   secret headers (Authorization, api keys…) are redacted from bodies.
 * - `replay`: a request is answered from the cassette, byte for byte, chunk by chunk, without
 *   any network access; a request with no recording is a 502 `replay_miss`.
 * - `replay_or_record`: replay when recorded, else go upstream and record.
 *
 * The cassette file is opened at start-up (`RecordReplayStore.open`), written asynchronously
 * through one append stream, and flushed by `close()`.
 */
import { abortableDelay as sleep } from '../../util/abortable-delay.js';
import { closeSync, createWriteStream, mkdirSync, openSync, type WriteStream } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../../errors/gateway-error.js';
import {
  CASSETTE_VERSION,
  CassetteError,
  CassetteIndex,
  canonicalBody,
  decodeChunk,
  encodeChunk,
  keptRequestHeadersOf,
  keptResponseHeadersOf,
  loadCassette,
  parseBody,
  redact,
  secretsOf,
  sha256,
  type CassetteExchange,
  type MatchMode,
} from './cassette.js';
import type { UpstreamRequestLifetime } from './request-lifetime.js';
import type { UpstreamClient, UpstreamResponse } from './upstream-client.js';
import { upstreamFailure } from './upstream-error.js';

export type RecordReplayMode = 'record' | 'replay' | 'replay_or_record';

export interface RecordReplaySettings {
  mode: RecordReplayMode;
  /** Absolute path of the JSONL cassette. */
  file: string;
  match: MatchMode;
  /** Replay with the recorded delays (headers and each chunk) instead of as fast as possible. */
  replayTiming: boolean;
}

/** What the provider needs of an upstream client. */
export type UpstreamTransport = Pick<UpstreamClient, 'post' | 'close'>;

/** The cassette of a running server: the recorded exchanges (for replay) and the append stream (for record). */
export class RecordReplayStore {
  readonly settings: RecordReplaySettings;
  readonly index: CassetteIndex;
  /** Exchanges appended since start. */
  recorded = 0;
  private readonly writer: WriteStream | undefined;
  private readonly onError: (message: string, error: unknown) => void;
  private writeFailed = false;
  private closing: Promise<void> | undefined;

  private constructor(settings: RecordReplaySettings, exchanges: CassetteExchange[], writer: WriteStream | undefined, onError: (message: string, error: unknown) => void) {
    this.settings = settings;
    this.index = new CassetteIndex(settings.match, exchanges);
    this.writer = writer;
    this.onError = onError;
    writer?.on('error', (error) => {
      if (!this.writeFailed) onError(`Cannot write the cassette ${settings.file}; exchanges are no longer recorded`, error);
      this.writeFailed = true;
    });
  }

  /**
   * Reads the cassette (replay modes) and opens it for appending (record modes: `record`
   * starts a new cassette, `replay_or_record` appends). Throws a CassetteError that says what
   * is wrong with the file.
   */
  static open(settings: RecordReplaySettings, onError: (message: string, error: unknown) => void = () => {}): RecordReplayStore {
    const exchanges = settings.mode === 'record' ? [] : loadCassette(settings.file, settings.mode === 'replay');
    let writer: WriteStream | undefined;
    if (settings.mode !== 'replay') {
      let fd: number;
      try {
        mkdirSync(dirname(settings.file), { recursive: true });
        fd = openSync(settings.file, settings.mode === 'record' ? 'w' : 'a', 0o600);
      } catch (error) {
        throw new CassetteError(`Cassette ${settings.file} cannot be opened for recording: ${(error as Error).message}`);
      }
      try {
        writer = createWriteStream('', { fd, flags: 'a', encoding: 'utf8' });
      } catch (error) {
        closeSync(fd);
        throw error;
      }
    }
    return new RecordReplayStore(settings, exchanges, writer, onError);
  }

  /** Appends an exchange (asynchronously) and, in replay_or_record, makes it replayable at once. */
  record(exchange: CassetteExchange): void {
    if (this.settings.mode === 'replay_or_record') this.index.add(exchange);
    if (this.writer === undefined || this.writeFailed || this.closing !== undefined) return;
    this.recorded++;
    this.writer.write(`${JSON.stringify(exchange)}\n`);
  }

  /** Flushes what was written and closes the file. */
  close(): Promise<void> {
    return (this.closing ??= new Promise<void>((resolveClosed) => {
      const writer = this.writer;
      if (writer === undefined || writer.closed || writer.destroyed) return resolveClosed();
      writer.end(() => resolveClosed());
      writer.once('error', () => resolveClosed());
    }));
  }

  /** The 502 of a request the cassette has no recording for. */
  missError(method: string, path: string, bodySha256: string): GatewayError {
    const file = this.settings.file;
    return new GatewayError({
      status: 502,
      source: 'gateway',
      type: 'upstream_error',
      code: 'replay_miss',
      message:
        `Replay miss: the cassette ${file} has no recorded exchange for ${method} ${path} with this body ` +
        `(body_sha256 ${bodySha256.slice(0, 16)}…, matching on ${this.settings.match === 'body' ? 'the body' : 'the body and path'}). ` +
        `Record it by running the same requests with CHATGATE_RECORD_REPLAY=record CHATGATE_CASSETTE=${file} ` +
        `(or record_replay.mode: record, or replay_or_record to add to the cassette) against a reachable upstream.`,
    });
  }
}

export class RecordReplayClient implements UpstreamTransport {
  private readonly inner: UpstreamClient;
  private readonly store: RecordReplayStore;

  constructor(inner: UpstreamClient, store: RecordReplayStore) {
    this.inner = inner;
    this.store = store;
  }

  /** Same arguments as UpstreamClient.post, passed on unchanged when the request goes upstream. */
  async post(...args: Parameters<UpstreamClient['post']>): Promise<UpstreamResponse> {
    const [, path, headers, body, lifetime] = args;
    const mode = this.store.settings.mode;
    const secrets = secretsOf(headers);
    // The body is matched as it is stored: with secrets redacted.
    const storedBody = redact(body, secrets);
    const canonical = canonicalBody(storedBody);
    if (mode !== 'record') {
      const exchange = this.store.index.take('POST', path, canonical);
      if (exchange !== undefined) return replay(exchange, lifetime, this.store.settings.replayTiming);
      if (mode === 'replay') throw this.store.missError('POST', path, sha256(canonical));
    }
    const sentAt = performance.now();
    const response = await this.inner.post(...args);
    const headersAt = performance.now();
    const onComplete = (chunks: TimedChunk[]) => {
      try {
        this.store.record(exchangeOf(path, headers, storedBody, canonical, secrets, response.statusCode, response.headers, headersAt - sentAt, chunks));
      } catch {
        // A recording that cannot be built is skipped; the answer itself is not affected.
      }
    };
    return { ...response, body: new RecordingBody(response.body, headersAt, onComplete) as unknown as UpstreamResponse['body'] };
  }

  async close(): Promise<void> {
    await Promise.all([this.inner.close(), this.store.close()]);
  }
}

interface TimedChunk {
  bytes: Buffer;
  ms: number;
}

function roundMs(ms: number): number {
  return Math.max(0, Math.round(ms * 10) / 10);
}

function exchangeOf(
  path: string,
  requestHeaders: readonly string[],
  storedBody: string,
  canonical: string,
  secrets: readonly string[],
  status: number,
  responseHeaders: IncomingHttpHeaders,
  headersMs: number,
  chunks: TimedChunk[],
): CassetteExchange {
  const parsed = parseBody(storedBody);
  let stored = chunks.map((chunk) => encodeChunk(chunk.bytes, roundMs(chunk.ms)));
  // A secret echoed by the upstream (even cut between two chunks) is redacted, at the price of the chunking.
  if (secrets.length > 0) {
    const whole = Buffer.concat(chunks.map((chunk) => chunk.bytes));
    if (secrets.some((secret) => whole.includes(secret))) {
      const text = redact(whole.toString('utf8'), secrets);
      stored = [{ ms: roundMs(chunks.at(-1)?.ms ?? 0), text }];
    }
  }
  const headers = keptResponseHeadersOf(responseHeaders);
  for (const [name, value] of Object.entries(headers)) headers[name] = redact(value, secrets);
  return {
    version: CASSETTE_VERSION,
    recorded_at: new Date().toISOString(),
    request: {
      method: 'POST',
      path,
      headers: keptRequestHeadersOf(requestHeaders),
      body_sha256: sha256(canonical),
      ...(parsed === undefined ? { body_text: storedBody } : { body: parsed.json }),
    },
    response: { status, headers, ms: roundMs(headersMs), chunks: stored },
  };
}

/**
 * The part of undici's body that the provider uses: async iteration of Buffers, `text()`,
 * `json()`, `arrayBuffer()`, `dump()` and `destroy()`.
 */
abstract class BodyLike {
  protected abstract chunks(): AsyncGenerator<Buffer>;
  abstract destroy(error?: Error): this;

  [Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    return this.chunks();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.chunks()) parts.push(chunk);
    const whole = Buffer.concat(parts);
    return whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.byteLength) as ArrayBuffer;
  }

  /** UTF-8, a leading BOM dropped: as undici's `text()`. */
  async text(): Promise<string> {
    return new TextDecoder().decode(await this.arrayBuffer());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async dump(): Promise<void> {
    await this.arrayBuffer();
  }
}

/** Passes the upstream body through, noting each chunk and its time; reports them once the body ended. */
class RecordingBody extends BodyLike {
  private readonly source: UpstreamResponse['body'];
  private readonly headersAt: number;
  private readonly onComplete: (chunks: TimedChunk[]) => void;

  constructor(source: UpstreamResponse['body'], headersAt: number, onComplete: (chunks: TimedChunk[]) => void) {
    super();
    this.source = source;
    this.headersAt = headersAt;
    this.onComplete = onComplete;
  }

  protected async *chunks(): AsyncGenerator<Buffer> {
    const seen: TimedChunk[] = [];
    for await (const chunk of this.source as AsyncIterable<Buffer>) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      seen.push({ bytes: Buffer.from(bytes), ms: performance.now() - this.headersAt });
      yield bytes;
    }
    this.onComplete(seen);
  }

  destroy(error?: Error): this {
    this.source.destroy(error);
    return this;
  }
}

/** Serves recorded chunks; with timing, each at its recorded offset. Stops when the lifetime aborts. */
class ReplayBody extends BodyLike {
  private readonly recorded: CassetteExchange['response']['chunks'];
  private readonly signal: AbortSignal;
  private readonly timing: boolean;
  private destroyed = false;

  constructor(recorded: CassetteExchange['response']['chunks'], signal: AbortSignal, timing: boolean) {
    super();
    this.recorded = recorded;
    this.signal = signal;
    this.timing = timing;
  }

  protected async *chunks(): AsyncGenerator<Buffer> {
    const startedAt = performance.now();
    for (const chunk of this.recorded) {
      if (this.timing) await sleep(chunk.ms - (performance.now() - startedAt), this.signal);
      this.throwIfStopped();
      yield decodeChunk(chunk);
    }
    this.throwIfStopped();
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }

  private throwIfStopped(): void {
    if (this.signal.aborted) throw this.signal.reason;
    if (this.destroyed) throw new Error('The replayed body was destroyed.');
  }
}

async function replay(exchange: CassetteExchange, lifetime: UpstreamRequestLifetime, timing: boolean): Promise<UpstreamResponse> {
  lifetime.start();
  try {
    if (timing) await sleep(exchange.response.ms ?? 0, lifetime.signal);
    if (lifetime.signal.aborted) throw lifetime.signal.reason;
  } catch (error) {
    lifetime.release();
    throw upstreamFailure(error, lifetime.cause, 'connect', lifetime.timeoutMs);
  }
  const headers: IncomingHttpHeaders = { ...exchange.response.headers };
  const response = {
    statusCode: exchange.response.status,
    statusText: '',
    headers,
    trailers: {},
    opaque: null,
    context: {},
    body: new ReplayBody(exchange.response.chunks, lifetime.signal, timing),
  };
  return response as unknown as UpstreamResponse;
}

