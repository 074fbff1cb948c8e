/**
 * A streamed upstream answer as an AsyncIterator of StreamParts. The request is sent on the
 * first `next()`, so that an HTTP error (or an unreachable upstream) is thrown before the first
 * part, where it can still become a status code. Body bytes are parsed as they arrive; nothing
 * is buffered beyond the current network chunk.
 *
 * Ending early: `return()` (a consumer that breaks out of its loop, or a cancelled
 * ReadableStream) aborts the upstream request at once, even while a `next()` is waiting on the
 * network; so does the call's AbortSignal (the client disconnected) and the whole-request
 * timeout. Either way undici destroys the socket, which frees the upstream from generating.
 *
 * Like any stream reader, a consumer awaits each `next()` before calling the next one
 * (`for await` and `ReadableStream.from` do); `return()` may be called at any time.
 */
import { StringDecoder } from 'node:string_decoder';
import type { GatewayError } from '../../errors/gateway-error.js';
import type { StreamPart } from '../spec.js';
import type { StreamKind } from './chunk-translator.js';
import type { UpstreamRequestLifetime } from './request-lifetime.js';
import { SseChunkParser } from './sse-chunk-parser.js';
import type { UpstreamResponse } from './upstream-client.js';
import { upstreamFailure, upstreamHttpError, upstreamInvalidResponse } from './upstream-error.js';
import { isErrorStatus, isJsonResponse, readErrorAnswer } from './upstream-response.js';

const finishedResult: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** Chunks read past [DONE] before the connection is given up rather than kept for reuse. */
const mostChunksAfterDone = 16;

export interface UpstreamPartStreamOptions {
  kind: StreamKind;
  lifetime: UpstreamRequestLifetime;
  /** Kept to redact it from upstream error messages. */
  apiKey: string | undefined;
  /** Sends the request; called by the first `next()`. Rejects with a GatewayError. */
  send: () => Promise<UpstreamResponse>;
}

export class UpstreamPartStream implements AsyncIterableIterator<StreamPart> {
  private readonly lifetime: UpstreamRequestLifetime;
  private readonly apiKey: string | undefined;
  private readonly parser: SseChunkParser;
  private send: (() => Promise<UpstreamResponse>) | undefined;
  private chunks: AsyncIterator<Buffer> | undefined;
  /** UTF-8 decoding that keeps a character cut between two network chunks. */
  private readonly decoder = new StringDecoder('utf8');
  /** Index of the next part to hand out from `parser.parts`. */
  private nextPart = 0;
  private closed = false;

  constructor(options: UpstreamPartStreamOptions) {
    this.lifetime = options.lifetime;
    this.apiKey = options.apiKey;
    this.send = options.send;
    this.parser = new SseChunkParser(options.kind, options.apiKey);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<StreamPart, undefined>> {
    const parts = this.parser.parts;
    for (;;) {
      if (this.nextPart < parts.length) {
        const part = parts[this.nextPart++] as StreamPart;
        return { done: false, value: part };
      }
      if (this.nextPart !== 0) {
        parts.length = 0;
        this.nextPart = 0;
      }
      if (this.closed) return finishedResult;
      if (this.parser.failure !== undefined) throw this.fail(this.parser.failure);
      if (this.parser.done) {
        this.finish();
        continue;
      }
      if (this.chunks === undefined) {
        await this.open();
        continue;
      }
      let chunk: IteratorResult<Buffer>;
      try {
        chunk = await this.chunks.next();
      } catch (error) {
        if (this.closed) return finishedResult;
        throw this.fail(upstreamFailure(error, this.lifetime.cause, 'stream', this.lifetime.timeoutMs));
      }
      if (this.closed) return finishedResult;
      if (chunk.done === true) {
        const rest = this.decoder.end();
        if (rest !== '') this.parser.feed(rest);
        this.parser.end();
        // Without failure, end() queued the closing parts; the body is over.
        if (this.parser.failure === undefined) {
          this.closed = true;
          this.lifetime.release();
        }
        continue;
      }
      this.parser.feed(this.decoder.write(chunk.value));
    }
  }

  /** The consumer stopped early: abort the upstream request (a no-op once it finished). */
  async return(): Promise<IteratorResult<StreamPart, undefined>> {
    if (!this.closed) {
      this.closed = true;
      this.lifetime.abort('consumer');
    }
    this.parser.parts.length = 0;
    this.nextPart = 0;
    return finishedResult;
  }

  /** Sends the request and checks the answer is an event stream. */
  private async open(): Promise<void> {
    const send = this.send;
    if (send === undefined) throw this.fail(upstreamInvalidResponse('The upstream stream was opened twice.'));
    this.send = undefined;
    let response: UpstreamResponse;
    try {
      response = await send();
    } catch (error) {
      if (this.closed) return; // return() was called meanwhile: next() reports the end
      throw this.fail(error as GatewayError);
    }
    if (this.closed) {
      response.body.destroy();
      return;
    }
    if (isErrorStatus(response.statusCode)) throw this.fail(await readErrorAnswer(response, this.lifetime, this.apiKey));
    if (isJsonResponse(response)) throw this.fail(await this.readJsonInsteadOfStream(response));
    this.chunks = response.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** An upstream that answers a streaming request with JSON: usually an error with status 200. */
  private async readJsonInsteadOfStream(response: UpstreamResponse): Promise<GatewayError> {
    let bodyText: string;
    try {
      bodyText = await response.body.text();
    } catch (error) {
      return upstreamFailure(error, this.lifetime.cause, 'body', this.lifetime.timeoutMs);
    }
    if (bodyText.includes('"error"')) return upstreamHttpError(response.statusCode, response.headers, bodyText, this.apiKey);
    return upstreamInvalidResponse('The upstream answered a streaming request with JSON instead of an event stream.');
  }

  /**
   * [DONE] was seen: the iterator is over. The rest of the body (normally just its end, already
   * received) is read in the background so that the connection goes back to the pool.
   */
  private finish(): void {
    this.closed = true;
    const chunks = this.chunks;
    if (chunks === undefined) {
      this.lifetime.release();
      return;
    }
    void drainRemainingChunks(chunks, this.lifetime);
  }

  /** Gives up on the upstream request (destroying the socket if the body is still open). */
  private fail(error: GatewayError): GatewayError {
    if (!this.closed) {
      this.closed = true;
      this.lifetime.abort('failure');
    }
    this.parser.parts.length = 0;
    this.nextPart = 0;
    return error;
  }
}

async function drainRemainingChunks(chunks: AsyncIterator<Buffer>, lifetime: UpstreamRequestLifetime): Promise<void> {
  try {
    for (let count = 0; count < mostChunksAfterDone; count++) {
      const result = await chunks.next();
      if (result.done === true) {
        lifetime.release();
        return;
      }
    }
    lifetime.abort('failure');
  } catch {
    lifetime.release();
  }
}
