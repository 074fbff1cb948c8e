/**
 * Guardrails (docs/guardrails.md), called with one line from the chat and completions
 * handlers: checks the input now (size, deny patterns, guard model: 400s) and returns the
 * provider to call instead of the model's own, which filters the output (deny_output →
 * content_filter), validates answers to json_schema requests (one retry, then 502) and asks
 * the guard model about non-streamed output. Without any guardrail, the model's provider
 * itself is returned.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ApiDependencies } from '../api/api-dependencies.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { Usage } from '../openai/responses.js';
import type { ChatResult, Provider } from '../providers/spec.js';
import { setUsage } from '../api/request-recording.js';
import { contentPolicyViolation, invalidModelOutput } from './errors.js';
import { askGuardModel } from './guard-model.js';
import { chatInputText, checkInput, completionInputText } from './input-check.js';
import { chatResultProblem, requestedSchema } from './json-output.js';
import { chatChoiceTexts, filterChatResult, filterCompletionResult, guardStream } from './output-filter.js';
import { resolveGuardrails, type GuardrailPolicy } from './policy.js';

export { resolveGuardrails } from './policy.js';

type GuardDependencies = Pick<ApiDependencies, 'models' | 'guardrails'>;

function policyFor(context: Context<AppEnv>, dependencies: GuardDependencies, model: ResolvedModel): GuardrailPolicy {
  return resolveGuardrails(dependencies.guardrails, model.config, context.get('principal')?.settings.guardrails);
}

/** The provider's methods, bound (providers may be class instances: spreading them would lose the methods). */
function delegate(inner: Provider): Provider {
  return {
    capabilities: inner.capabilities,
    chat: (request, call) => inner.chat(request, call),
    streamChat: (request, call) => inner.streamChat(request, call),
    complete: (request, call) => inner.complete(request, call),
    streamComplete: (request, call) => inner.streamComplete(request, call),
    ...(inner.embed ? { embed: inner.embed.bind(inner) } : {}),
  };
}

function addUsage(left: Usage, right: Usage): Usage {
  return {
    ...right,
    prompt_tokens: left.prompt_tokens + right.prompt_tokens,
    completion_tokens: left.completion_tokens + right.completion_tokens,
    total_tokens: left.total_tokens + right.total_tokens,
  };
}

async function screenInput(context: Context<AppEnv>, dependencies: GuardDependencies, policy: GuardrailPolicy, text: string, param: string) {
  checkInput(policy, text, param);
  if (policy.guardInput && policy.guardModel) {
    const decision = await askGuardModel(dependencies.models, policy.guardModel, 'input', text, context.req.raw.signal, context.get('requestId'));
    if (!decision.allowed) throw contentPolicyViolation(`The input was refused by the guard model (category: ${decision.category}).`, param);
  }
}

/** Checks a chat request's input and returns the provider to call for it. */
export async function guardChat(context: Context<AppEnv>, dependencies: GuardDependencies, model: ResolvedModel, request: ChatCompletionRequest): Promise<Provider> {
  const policy = policyFor(context, dependencies, model);
  const schema = policy.validateJson ? requestedSchema(request)?.schema : undefined;
  const filters = policy.denyOutput.length > 0 || schema !== undefined || policy.guardOutput;
  if (policy.denyInput.length > 0 || policy.maxInputChars !== undefined || policy.guardInput) {
    await screenInput(context, dependencies, policy, chatInputText(request), 'messages');
  }
  if (!filters) return model.provider;
  const inner = model.provider;
  return {
    ...delegate(inner),
    async chat(chatRequest, call) {
      let result: ChatResult = await inner.chat(chatRequest, call);
      if (schema !== undefined && chatResultProblem(result, schema)) {
        const retry = await inner.chat(chatRequest, call);
        result = { ...retry, usage: addUsage(result.usage, retry.usage) };
        const problem = chatResultProblem(result, schema);
        if (problem) {
          setUsage(context, result.usage);
          throw invalidModelOutput(`The model's answer does not follow the requested JSON schema, also after one retry (${problem}).`);
        }
      }
      const refused = new Set<number>();
      if (policy.guardOutput && policy.guardModel) {
        for (const choice of result.choices) {
          const text = chatChoiceTexts(choice.message).join('\n');
          if (text === '') continue;
          const decision = await askGuardModel(dependencies.models, policy.guardModel, 'output', text, call.signal, call.requestId);
          if (!decision.allowed) refused.add(choice.index);
        }
      }
      return filterChatResult(result, policy.denyOutput, (index) => refused.has(index));
    },
    streamChat(chatRequest, call) {
      return guardStream(inner.streamChat(chatRequest, call), { rules: policy.denyOutput, choices: chatRequest.n ?? 1, ...(schema ? { schema } : {}) });
    },
  };
}

/** Checks a legacy completion request's input and returns the provider to call for it. */
export async function guardCompletion(context: Context<AppEnv>, dependencies: GuardDependencies, model: ResolvedModel, request: CompletionRequest): Promise<Provider> {
  const policy = policyFor(context, dependencies, model);
  if (policy.denyInput.length > 0 || policy.maxInputChars !== undefined || policy.guardInput) {
    await screenInput(context, dependencies, policy, completionInputText(request), 'prompt');
  }
  if (policy.denyOutput.length === 0 && !policy.guardOutput) return model.provider;
  const inner = model.provider;
  return {
    ...delegate(inner),
    async complete(completionRequest, call) {
      let result = await inner.complete(completionRequest, call);
      if (policy.guardOutput && policy.guardModel) {
        const refused = new Set<number>();
        for (const choice of result.choices) {
          if (choice.text === '') continue;
          const decision = await askGuardModel(dependencies.models, policy.guardModel, 'output', choice.text, call.signal, call.requestId);
          if (!decision.allowed) refused.add(choice.index);
        }
        result = { ...result, choices: result.choices.map((choice) => (refused.has(choice.index) ? { index: choice.index, text: '', finishReason: 'content_filter' as const, logprobs: null } : choice)) };
      }
      return filterCompletionResult(result, policy.denyOutput);
    },
    streamComplete(completionRequest, call) {
      return guardStream(inner.streamComplete(completionRequest, call), { rules: policy.denyOutput, choices: completionRequest.n ?? 1 });
    },
  };
}
