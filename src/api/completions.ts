/** `POST /v1/completions`, the legacy text completion endpoint. */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { checkModelAllowed } from '../keys/access-policy.js';
import { completionRequest, type CompletionRequest } from '../openai/completion-request.js';
import type { Completion } from '../openai/responses.js';
import { checkCompletionContextWindow } from '../gateway/context-window.js';
import { CompletionChunkRenderer } from '../streaming/completion-chunk-renderer.js';
import type { CompletionResult } from '../providers/spec.js';
import { invalidRequest } from '../errors/gateway-error.js';
import type { ApiDependencies } from './api-dependencies.js';
import { newObjectId, unixSeconds } from './ids.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { noteModel, setUsage } from './request-recording.js';
import { reserveCompletion } from './request-metering.js';
import { providerCall, serveProviderStream } from './provider-stream.js';
import { guardCompletion } from '../guardrails/index.js';
import { noteTarget } from './served-target.js';
import { completionCache } from './response-cache.js';
import { applyCompletionPii, restoreCompletionResult } from './pii-policy.js';

export function toCompletion(result: CompletionResult, modelName: string): Completion {
  return {
    id: result.id ?? newObjectId('cmpl-'),
    object: 'text_completion',
    created: result.created ?? unixSeconds(),
    model: modelName,
    choices: result.choices.map((choice) => ({
      text: choice.text,
      index: choice.index,
      logprobs: choice.logprobs,
      finish_reason: choice.finishReason,
    })),
    usage: result.usage,
    system_fingerprint: result.systemFingerprint ?? null,
  };
}

function checkCompletionRequest(request: CompletionRequest): void {
  if (request.stream_options != null && request.stream !== true) {
    throw invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  }
  if (request.best_of != null && request.n != null && request.best_of < request.n) {
    throw invalidRequest("Invalid value for 'best_of': 'best_of' must be greater than or equal to 'n'.", 'best_of');
  }
  if (request.stream === true && request.best_of != null && request.best_of > 1) {
    throw invalidRequest("Invalid value for 'best_of': 'best_of' cannot be used with 'stream'.", 'best_of');
  }
}

export function completionsHandler(dependencies: ApiDependencies) {
  return async (context: Context<AppEnv>): Promise<Response> => {
    const request = parseWith(completionRequest, await readJsonBody(context, dependencies.maxBodyBytes));
    checkModelAllowed(context.get('principal'), request.model);
    const model = dependencies.models.resolve(request.model, context.get('principal')?.project);
    noteModel(context, model.config, request.user);
    checkCompletionRequest(request);
    await applyCompletionPii(context, dependencies, model, request);
    const provider = await guardCompletion(context, dependencies, model, request);
    await checkCompletionContextWindow(request, model.config, dependencies.tokenCounters);
    const cache = await completionCache(context, dependencies, model, request);
    if (cache.hit) return cache.hit;
    await reserveCompletion(context, dependencies, model.config, request);

    if (!request.stream) {
      const result = cache.keep(await provider.complete(request, providerCall(context, model, context.req.raw.signal)));
      noteTarget(context, result.target);
      setUsage(context, result.usage);
      return context.json(toCompletion(await restoreCompletionResult(context, result), model.config.name));
    }
    const renderer = new CompletionChunkRenderer(
      { id: newObjectId('cmpl-'), created: unixSeconds(), model: model.config.name, systemFingerprint: null },
      request.stream_options?.include_usage === true,
    );
    return serveProviderStream(context, model, dependencies, renderer, (call) => cache.keepStream(provider.streamComplete(request, call)));
  };
}
