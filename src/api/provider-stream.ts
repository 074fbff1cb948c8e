/**
 * Runs a streamed provider call for a request: links the client's disconnect to the
 * provider call, renders parts as SSE and records the request when the stream ends.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ProviderCall, StreamPart } from '../providers/spec.js';
import { createStreamResponse, type PartRenderer } from '../streaming/stream-response.js';
import type { RequestRecorder } from './api-dependencies.js';
import { recordStreamEnd } from './request-recording.js';

export function providerCall(context: Context<AppEnv>, model: ResolvedModel, signal: AbortSignal): ProviderCall {
  return { model: model.config, signal, requestId: context.get('requestId') };
}

export async function serveProviderStream(
  context: Context<AppEnv>,
  model: ResolvedModel,
  recorder: RequestRecorder,
  renderer: PartRenderer,
  start: (call: ProviderCall) => AsyncIterable<StreamPart>,
): Promise<Response> {
  const clientSignal = context.req.raw.signal;
  const abortController = new AbortController();
  const onClientAbort = () => abortController.abort(clientSignal.reason);
  clientSignal.addEventListener('abort', onClientAbort, { once: true });
  try {
    return await createStreamResponse({
      parts: start(providerCall(context, model, abortController.signal)),
      renderer,
      abortController,
      onEnd: (outcome) => {
        clientSignal.removeEventListener('abort', onClientAbort);
        recordStreamEnd(context, recorder, outcome);
      },
    });
  } catch (error) {
    clientSignal.removeEventListener('abort', onClientAbort);
    throw error;
  }
}
