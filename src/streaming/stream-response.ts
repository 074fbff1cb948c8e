/**
 * Serves a provider's parts as an SSE response without buffering: each part is rendered
 * and written as soon as it arrives, pulled only as fast as the client reads. The first
 * part is awaited before the response starts, so a failure before the first byte is a
 * real HTTP status; a failure after it becomes an SSE error frame. A client that goes
 * away cancels the stream, which aborts the provider call at once.
 */
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
  /** Aborts the provider call; fired when the client cancels. */
  abortController: AbortController;
  headers?: Record<string, string>;
  onEnd?: (outcome: StreamOutcome) => void;
}

const encoder = new TextEncoder();

export async function createStreamResponse(options: StreamResponseOptions): Promise<Response> {
  const { renderer, abortController } = options;
  const iterator = options.parts[Symbol.asyncIterator]();
  let ended = false;
  const finish = (outcome: Omit<StreamOutcome, 'usage'>) => {
    if (ended) return;
    ended = true;
    options.onEnd?.({ ...outcome, usage: renderer.usage });
  };

  // Wait for the first part that produces output: errors until then become HTTP statuses.
  let pending = '';
  let done = false;
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    pending = renderer.render(next.value);
    if (pending) break;
  }

  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (pending) {
            const text = pending;
            pending = '';
            controller.enqueue(encoder.encode(text));
            return;
          }
          while (!done) {
            const next = await iterator.next();
            if (next.done) {
              done = true;
              break;
            }
            const text = renderer.render(next.value);
            if (text) {
              controller.enqueue(encoder.encode(text));
              return;
            }
          }
          controller.enqueue(encoder.encode(renderer.end() + SSE_DONE));
          controller.close();
          finish({ error: null, cancelled: false });
        } catch (error) {
          const gatewayError = toGatewayError(error);
          done = true;
          if (abortController.signal.aborted) {
            finish({ error: null, cancelled: true });
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(sseError(gatewayError)));
          controller.close();
          finish({ error: gatewayError, cancelled: false });
        }
      },
      async cancel() {
        done = true;
        abortController.abort(new Error('The client closed the connection.'));
        finish({ error: null, cancelled: true });
        await iterator.return?.().catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );

  return new Response(stream, { status: 200, headers: { ...SSE_HEADERS, ...options.headers } });
}
