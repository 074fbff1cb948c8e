/**
 * Runs a streamed provider call for a request: links the client's disconnect to the
 * provider call, renders parts as SSE (straight to Node's socket when the app runs on
 * Node) and records the request when the stream ends.
 */
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { AppEnv } from '../app-env.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ProviderCall, StreamPart } from '../providers/spec.js';
import { createStreamResponse, writeStreamToNode, type PartRenderer, type StreamResponseOptions } from '../streaming/stream-response.js';
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
  const options: StreamResponseOptions = {
    parts: start(providerCall(context, model, abortController.signal)),
    renderer,
    abortController,
    onEnd: (outcome) => {
      clientSignal.removeEventListener('abort', onClientAbort);
      recordStreamEnd(context, recorder, outcome);
    },
  };
  try {
    const outgoing = context.env?.outgoing;
    if (outgoing && typeof outgoing.writeHead === 'function') {
      options.headers = {
        ...context.get('responseHeaders'),
        'openai-processing-ms': String(Math.max(0, Math.round(performance.now() - context.get('startedAt')))),
      };
      await writeStreamToNode(outgoing, options);
      context.set('writtenDirectly', true);
      return RESPONSE_ALREADY_SENT;
    }
    return await createStreamResponse(options);
  } catch (error) {
    clientSignal.removeEventListener('abort', onClientAbort);
    throw error;
  }
}
