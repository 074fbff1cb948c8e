/**
 * Serves a provider's parts as SSE without buffering: each part is rendered and written as
 * soon as it arrives, and the next part is asked for only when the client keeps up. The
 * first part is awaited before anything is sent, so a failure before the first byte is a
 * real HTTP status (the caller's error); a failure after it becomes an SSE error frame. A
 * client that goes away stops the parts and aborts the provider call at once.
 *
 * Two writers share that logic: on Node, parts go straight to the socket (`writeToNode`:
 * headers and first event leave in one packet, no web-stream layer per event); elsewhere
 * (tests through `app.request()`), as a web `Response` whose body is pulled by the reader.
 */
import type { ServerResponse } from 'node:http';
import { SSE_DONE, SSE_HEADERS, sseError } from './sse.js';
import type { StreamPart } from '../providers/spec.js';
import type { Usage } from '../openai/responses.js';
import { GatewayError, toGatewayError } from '../errors/gateway-error.js';

export interface PartRenderer {
  render(part: StreamPart): string;
  end(): string;
  readonly usage: Usage | null;
}

export interface StreamOutcome {
  usage: Usage | null;
  error: GatewayError | null;
  /** The client went away before the end. */
  cancelled: boolean;
}

export interface StreamResponseOptions {
  parts: AsyncIterable<StreamPart>;
  renderer: PartRenderer;
  /** Aborts the provider call; fired when the client goes away. */
  abortController: AbortController;
  headers?: Record<string, string>;
  /** Told once when the stream ends; a promise it returns (the audit record being queued) is awaited before the last bytes go out. */
  onEnd?: (outcome: StreamOutcome) => unknown;
}

/** A stream whose first output is known: what both writers start from. */
class StartedStream {
  readonly iterator: AsyncIterator<StreamPart>;
  readonly options: StreamResponseOptions;
  first = '';
  done = false;
  #ended = false;

  constructor(options: StreamResponseOptions) {
    this.options = options;
    this.iterator = options.parts[Symbol.asyncIterator]();
  }

  /** Waits for the first part that produces output; errors until then propagate. */
  async start(): Promise<void> {
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        return;
      }
      this.first = this.options.renderer.render(next.value);
      if (this.first) return;
    }
  }

  /** The next text to write, or null at the end (after which `closing()` gives the tail). */
  async nextText(): Promise<string | null> {
    while (!this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const text = this.options.renderer.render(next.value);
      if (text) return text;
    }
    return null;
  }

  closing(): string {
    return this.options.renderer.end() + SSE_DONE;
  }

  /** Text to send for a failure after the first byte (once recorded), or null when the client left. */
  async failure(error: unknown): Promise<string | null> {
    this.done = true;
    if (this.options.abortController.signal.aborted) {
      void this.finish({ error: null, cancelled: true });
      return null;
    }
    const gatewayError = toGatewayError(error);
    await this.finish({ error: gatewayError, cancelled: false });
    return sseError(gatewayError);
  }

  cancel(): void {
    this.done = true;
    this.options.abortController.abort(new Error('The client closed the connection.'));
    void this.finish({ error: null, cancelled: true });
    this.iterator.return?.().catch(() => undefined);
  }

  /** Ends the stream's bookkeeping once; resolves when `onEnd` has recorded it. Never rejects. */
  async finish(outcome: Omit<StreamOutcome, 'usage'>): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await Promise.resolve(this.options.onEnd?.({ ...outcome, usage: this.options.renderer.usage })).catch(() => undefined);
  }
}

const encoder = new TextEncoder();

/** The stream as a web Response (pulled by whoever reads its body). */
export async function createStreamResponse(options: StreamResponseOptions): Promise<Response> {
  const stream = new StartedStream(options);
  await stream.start();
  let pending = stream.first;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (pending) {
            controller.enqueue(encoder.encode(pending));
            pending = '';
            return;
          }
          const text = await stream.nextText();
          if (text !== null) {
            controller.enqueue(encoder.encode(text));
            return;
          }
          // Recorded (and journaled) before the last bytes are released.
          const tail = stream.closing();
          await stream.finish({ error: null, cancelled: false });
          controller.enqueue(encoder.encode(tail));
          controller.close();
        } catch (error) {
          const frame = await stream.failure(error);
          if (frame) controller.enqueue(encoder.encode(frame));
          controller.close();
        }
      },
      cancel() {
        stream.cancel();
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...options.headers } });
}

function waitForDrain(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/**
 * Writes the stream straight to Node's response. Resolves once the first event is written
 * (or throws before anything is sent); the rest is written in the background, honouring
 * backpressure, and ends with `data: [DONE]` or an error frame.
 */
export async function writeStreamToNode(response: ServerResponse, options: StreamResponseOptions): Promise<void> {
  const stream = new StartedStream(options);
  await stream.start();
  const onClose = () => {
    if (!response.writableFinished) stream.cancel();
  };
  response.once('close', onClose);
  response.writeHead(200, { ...SSE_HEADERS, ...options.headers });
  // Parts parsed from one upstream network read arrive within one run of the microtask
  // queue: cork the socket for that run so they leave in one write, not one syscall each.
  let corked = false;
  const uncork = () => {
    corked = false;
    response.uncork();
  };
  const write = (text: string): boolean => {
    if (!corked) {
      corked = true;
      response.cork();
      process.nextTick(uncork);
    }
    return response.write(text);
  };
  let writable = stream.first ? write(stream.first) : true;

  void (async () => {
    try {
      for (;;) {
        if (!writable) {
          await waitForDrain(response);
          if (response.destroyed) return;
        }
        const text = await stream.nextText();
        if (response.destroyed) return;
        if (text === null) break;
        writable = write(text);
      }
      // Recorded (and journaled) before `[DONE]` goes out: a crash after the client saw the
      // end of the stream cannot lose its audit record.
      const tail = stream.closing();
      await stream.finish({ error: null, cancelled: false });
      if (response.destroyed) return;
      response.end(tail);
    } catch (error) {
      const frame = await stream.failure(error);
      if (!response.destroyed) response.end(frame ?? undefined);
    } finally {
      if (response.writableFinished) response.off('close', onClose);
    }
  })();
}
