/**
 * Incremental parsing of an upstream's server-sent events into StreamParts: text goes in as it
 * arrives (any split, CR/LF included, thanks to eventsource-parser), parts come out into a
 * queue the caller drains. Stops at `data: [DONE]`; records, instead of throwing, the first
 * failure (malformed JSON, an error frame) so that the parts before it still go out.
 */
import { createParser } from 'eventsource-parser';
import type { EventSourceMessage, EventSourceParser } from 'eventsource-parser';
import type { GatewayError } from '../../errors/gateway-error.js';
import type { StreamPart } from '../spec.js';
import { ChunkTranslator } from './chunk-translator.js';
import type { StreamKind } from './chunk-translator.js';
import { upstreamErrorFrame, upstreamStreamError } from './upstream-error.js';
import type { UpstreamChatChunk, UpstreamCompletionChunk } from './upstream-types.js';

/** A single event larger than this (in UTF-16 units) is treated as a broken stream. */
const largestEvent = 16 * 1024 * 1024;

export class SseChunkParser {
  /** Parts parsed and not yet taken; the caller drains it. */
  readonly parts: StreamPart[] = [];
  /** `data: [DONE]` was seen. */
  done = false;
  /** The first failure; set once, parsing stops there. */
  failure: GatewayError | undefined;
  private readonly translator: ChunkTranslator;
  private readonly parser: EventSourceParser;
  private readonly apiKey: string | undefined;

  constructor(kind: StreamKind, apiKey: string | undefined) {
    this.translator = new ChunkTranslator(kind);
    this.apiKey = apiKey;
    this.parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') this.fail(upstreamStreamError('The upstream sent an oversized event in its stream.'));
      },
      maxBufferSize: largestEvent,
    });
  }

  /** Whether parsing is over ([DONE] or a failure): further text is ignored. */
  get stopped(): boolean {
    return this.done || this.failure !== undefined;
  }

  feed(text: string): void {
    if (!this.stopped) this.parser.feed(text);
  }

  /**
   * The body ended: parses an unterminated last event, then either adds the closing usage part
   * (a stream without [DONE] is accepted when every choice finished) or records the failure.
   */
  end(): void {
    // Two line ends dispatch a last event the upstream did not terminate (a bare `data: [DONE]`).
    if (!this.stopped) this.parser.feed('\n\n');
    if (this.stopped) return;
    if (this.translator.finished) this.translator.flush(this.parts);
    else this.fail(upstreamStreamError('The upstream stream ended before the answer was complete.'));
  }

  private onEvent(event: EventSourceMessage): void {
    if (this.stopped) return;
    const data = event.data;
    if (data === '[DONE]') {
      this.done = true;
      this.translator.flush(this.parts);
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch (error) {
      this.fail(upstreamStreamError('The upstream sent malformed JSON in its event stream.', null, error));
      return;
    }
    if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) {
      this.fail(upstreamStreamError('The upstream sent an event that is not a JSON object.'));
      return;
    }
    const frame = chunk as UpstreamChatChunk & UpstreamCompletionChunk;
    if (event.event === 'error' || (frame.error !== undefined && frame.error !== null)) {
      this.fail(upstreamErrorFrame(frame.error ?? (frame as { message?: unknown }), this.apiKey));
      return;
    }
    this.translator.translate(frame, this.parts);
  }

  private fail(error: GatewayError): void {
    this.failure ??= error;
  }
}
