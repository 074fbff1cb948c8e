/**
 * The JSON bodies sent upstream: the client's request as it came (unknown fields included),
 * with `model` replaced by the upstream's name for it, and the streaming fields set to what
 * the provider method needs. One shallow copy of the top-level object, nothing deeper.
 */
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import type { CompletionRequest } from '../../openai/completion-request.js';

type UpstreamRequest = ChatCompletionRequest | CompletionRequest;

/** For `chat()` / `complete()`: never streamed (`stream_options` without `stream` is a 400 upstream). */
export function wholeAnswerBody(request: UpstreamRequest, upstreamModel: string): string {
  if (request.stream || request.stream_options !== undefined) {
    return JSON.stringify({ ...request, model: upstreamModel, stream: false, stream_options: undefined });
  }
  return JSON.stringify({ ...request, model: upstreamModel });
}

/**
 * For `streamChat()` / `streamComplete()`: streamed, with usage always asked for so that it is
 * known whatever the client asked; the API layer decides whether the client sees it.
 */
export function streamedAnswerBody(request: UpstreamRequest, upstreamModel: string): string {
  const streamOptions = request.stream_options;
  return JSON.stringify({
    ...request,
    model: upstreamModel,
    stream: true,
    stream_options: streamOptions?.include_usage === true ? streamOptions : { ...streamOptions, include_usage: true },
  });
}
