/** `POST /v1/chat/completions`: validate, resolve the model, check, call the provider, render. */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { checkModelAllowed } from '../keys/access-policy.js';
import { chatCompletionRequest, type ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { ChatCompletion } from '../openai/responses.js';
import { checkChatContextWindow } from '../gateway/context-window.js';
import { ChatChunkRenderer } from '../streaming/chat-chunk-renderer.js';
import type { ChatResult } from '../providers/spec.js';
import type { ApiDependencies } from './api-dependencies.js';
import { checkChatRequest } from './chat-request-checks.js';
import { newObjectId, unixSeconds } from './ids.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { noteModel, setUsage } from './request-recording.js';
import { reserveChat } from './request-metering.js';
import { providerCall, serveProviderStream } from './provider-stream.js';
import { guardChat } from '../guardrails/index.js';
import { noteTarget } from './served-target.js';
import { chatCache } from './response-cache.js';
import { applyChatPii, restoreChatResult } from './pii-policy.js';

export function toChatCompletion(result: ChatResult, modelName: string): ChatCompletion {
  const completion: ChatCompletion = {
    id: result.id ?? newObjectId('chatcmpl-'),
    object: 'chat.completion',
    created: result.created ?? unixSeconds(),
    model: modelName,
    choices: result.choices.map((choice) => ({
      index: choice.index,
      message: choice.message,
      logprobs: choice.logprobs,
      finish_reason: choice.finishReason,
    })),
    usage: result.usage,
    system_fingerprint: result.systemFingerprint ?? null,
  };
  if (result.serviceTier) completion.service_tier = result.serviceTier;
  return completion;
}

export function chatCompletionsHandler(dependencies: ApiDependencies) {
  return async (context: Context<AppEnv>): Promise<Response> => {
    const request: ChatCompletionRequest = parseWith(chatCompletionRequest, await readJsonBody(context, dependencies.maxBodyBytes));
    checkModelAllowed(context.get('principal'), request.model);
    const model = dependencies.models.resolve(request.model, context.get('principal')?.project);
    noteModel(context, model.config, request.user);
    checkChatRequest(request, model);
    await applyChatPii(context, dependencies, model, request);
    const provider = await guardChat(context, dependencies, model, request);
    await checkChatContextWindow(request, model.config, dependencies.tokenCounters);
    const cache = await chatCache(context, dependencies, model, request);
    if (cache.hit) return cache.hit;
    await reserveChat(context, dependencies, model.config, request);

    if (!request.stream) {
      const result = cache.keep(await provider.chat(request, providerCall(context, model, context.req.raw.signal)));
      noteTarget(context, result.target);
      setUsage(context, result.usage);
      return context.json(toChatCompletion(await restoreChatResult(context, result), model.config.name));
    }
    const renderer = new ChatChunkRenderer(
      { id: newObjectId('chatcmpl-'), created: unixSeconds(), model: model.config.name, systemFingerprint: null },
      request.stream_options?.include_usage === true,
    );
    return serveProviderStream(context, model, dependencies, renderer, (call) => cache.keepStream(provider.streamChat(request, call)));
  };
}
