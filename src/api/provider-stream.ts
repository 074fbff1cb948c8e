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
import { recordStreamEnd, type RecordingDependencies } from './request-recording.js';
import { notingTarget } from './served-target.js';
import { clientParts } from './pii-policy.js';

/** The parts, with their text collected into `sink` as they pass (for the audit log's response body). */
async function* collectingText(parts: AsyncIterable<StreamPart>, sink: string[][]): AsyncIterable<StreamPart> {
  for await (const part of parts) {
    if (part.type === 'text-delta') (sink[part.choice] ??= []).push(part.text);
    else if (part.type === 'tool-call-delta' || part.type === 'function-call-delta') (sink[part.choice] ??= []).push(part.argumentsDelta);
    yield part;
  }
}

export function providerCall(context: Context<AppEnv>, model: ResolvedModel, signal: AbortSignal): ProviderCall {
  return { model: model.config, signal, requestId: context.get('requestId') };
}

export async function serveProviderStream(
  context: Context<AppEnv>,
  model: ResolvedModel,
  recording: RecordingDependencies,
  renderer: PartRenderer,
  start: (call: ProviderCall) => AsyncIterable<StreamPart>,
): Promise<Response> {
  const clientSignal = context.req.raw.signal;
  const abortController = new AbortController();
  const onClientAbort = () => abortController.abort(clientSignal.reason);
  clientSignal.addEventListener('abort', onClientAbort, { once: true });
  const collected: string[][] | undefined = recording.auditBodies ? [] : undefined;
  const started = start(providerCall(context, model, abortController.signal));
  const parts = notingTarget(context, started, () => (options.headers ??= {}));
  const options: StreamResponseOptions = {
    // The audit copy is collected before restore (placeholders); the client gets the originals back (pseudonymize).
    parts: clientParts(context, collected ? collectingText(parts, collected) : parts),
    renderer,
    abortController,
    onEnd: (outcome) => {
      clientSignal.removeEventListener('abort', onClientAbort);
      const responseBody = collected ? JSON.stringify({ choices: collected.map((pieces, index) => ({ index, text: pieces.join('') })) }) : null;
      return recordStreamEnd(context, recording, outcome, responseBody);
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
    const headers = context.get('responseHeaders');
    if (headers) options.headers = { ...headers, ...options.headers };
    return await createStreamResponse(options);
  } catch (error) {
    clientSignal.removeEventListener('abort', onClientAbort);
    throw error;
  }
}
