/**
 * One choice of a chat completion on a leased sequence, in whichever form the request asks
 * for: free text; structured text (response_format, through a grammar); function calling
 * that the model may use (`auto`, node-llama-cpp's function calling in the template's own
 * syntax); or a call it must make (`required` / named, forced-tool-call.ts).
 *
 * Every finished structured answer and every call's arguments are checked against the
 * schema (the grammars leave gaps: numeric bounds, some formats). Not streamed, a failed
 * check gets one more try with another seed, then 500 `invalid_model_output`; streamed, the
 * parts already went out, so the check failing ends the stream with that error.
 */
import type { ChatHistoryItem, LlamaChatResponseFunctionCallParamsChunk } from 'node-llama-cpp';
import type { ToolCall } from '../../openai/chat-completion-request.js';
import type { ChatFinishReason, TokenLogprob } from '../../openai/responses.js';
import { toolCallId } from '../mock/tool-call-id.js';
import type { StreamPart } from '../spec.js';
import { generateForcedCall } from './forced-tool-call.js';
import { generateChat, generateChatWithLogprobs, type GenerateOptions } from './generate.js';
import type { SequenceLease } from './loaded-models.js';
import { grammarFor, invalidModelOutput, outputProblem, STRUCTURED_DEFAULT_MAX_TOKENS, type OutputFormat } from './structured-output.js';
import { argumentsProblem, libraryFunctions, type PlannedFunction, type ToolPlan } from './tool-plan.js';

export interface ChoiceRequest {
  history: ChatHistoryItem[];
  format: OutputFormat | undefined;
  tools: ToolPlan | undefined;
  modelName: string;
  /** Report log probabilities with this many alternatives per token (text answers only). */
  topLogprobs?: number;
  /** Streams the choice's parts as they are generated (no retry then). */
  emit?: (part: StreamPart) => void;
}

export interface ChoiceOutcome {
  text: string;
  /** When asked for (`topLogprobs`). */
  logprobs?: TokenLogprob[];
  toolCalls: ToolCall[];
  /** Legacy `functions`: the one call is answered as `function_call`. */
  legacy: boolean;
  finishReason: ChatFinishReason;
  promptTokens: number;
  completionTokens: number;
}

interface Attempt extends ChoiceOutcome {
  /** Why the answer does not fit its schema, if it does not. */
  problem?: string;
}

function argumentsGrammar(lease: SequenceLease) {
  return (definition: PlannedFunction) =>
    grammarFor(lease.loaded.model, { kind: 'json_schema', schema: definition.schema, grammarSchema: definition.grammarSchema, key: definition.grammarKey });
}

function functionNamed(plan: ToolPlan, name: string): PlannedFunction {
  const definition = plan.functions.find((candidate) => candidate.name === name);
  if (!definition) throw new Error(`the model called an unknown function '${name}'`);
  return definition;
}

async function textAttempt(lease: SequenceLease, request: ChoiceRequest, options: GenerateOptions): Promise<Attempt> {
  const structured = request.format ? { grammar: await grammarFor(lease.loaded.model, request.format), defaultCap: STRUCTURED_DEFAULT_MAX_TOKENS } : {};
  const emit = request.emit;
  const generated =
    request.topLogprobs === undefined
      ? await generateChat(lease, request.history, {
          ...options,
          ...structured,
          ...(emit ? { onText: (text: string) => emit({ type: 'text-delta', choice: 0, text }) } : {}),
        })
      : await generateChatWithLogprobs(lease, request.history, {
          ...options,
          ...structured,
          topLogprobs: request.topLogprobs,
          ...(emit ? { onPiece: (piece) => emit({ type: 'text-delta', choice: 0, text: piece.text, logprobs: { content: piece.logprobs, refusal: null } }) } : {}),
        });
  const problem = request.format && generated.finishReason === 'stop' ? outputProblem(request.format, generated.text) : undefined;
  return {
    text: generated.text,
    ...(generated.logprobs ? { logprobs: generated.logprobs } : {}),
    toolCalls: [],
    legacy: false,
    finishReason: generated.finishReason,
    promptTokens: generated.promptTokens,
    completionTokens: generated.completionTokens,
    ...(problem ? { problem } : {}),
  };
}

async function autoToolsAttempt(lease: SequenceLease, request: ChoiceRequest, plan: ToolPlan, options: GenerateOptions): Promise<Attempt> {
  const emit = request.emit;
  const argumentsTexts: string[] = [];
  const ids: string[] = [];
  const onParams = (chunk: LlamaChatResponseFunctionCallParamsChunk) => {
    const index = chunk.callIndex;
    const first = argumentsTexts[index] === undefined;
    argumentsTexts[index] = (argumentsTexts[index] ?? '') + chunk.paramsChunk;
    if (first) ids[index] = toolCallId();
    if (!emit) return;
    if (plan.legacy) {
      if (first) emit({ type: 'function-call-delta', choice: 0, name: chunk.functionName, argumentsDelta: '' });
      if (chunk.paramsChunk) emit({ type: 'function-call-delta', choice: 0, argumentsDelta: chunk.paramsChunk });
      return;
    }
    if (first) emit({ type: 'tool-call-delta', choice: 0, index, id: ids[index]!, name: chunk.functionName, argumentsDelta: '' });
    if (chunk.paramsChunk) emit({ type: 'tool-call-delta', choice: 0, index, argumentsDelta: chunk.paramsChunk });
  };
  const generated = await generateChat(lease, request.history, {
    ...options,
    functions: libraryFunctions(plan.functions),
    maxParallelFunctionCalls: plan.parallel ? plan.functions.length * 4 : 1,
    onFunctionCallParamsChunk: onParams,
    ...(emit ? { onText: (text: string) => emit({ type: 'text-delta', choice: 0, text }) } : {}),
  });
  const calls = generated.functionCalls ?? [];
  let problem: string | undefined;
  const toolCalls = calls.map((call, index): ToolCall => {
    const argumentsText = argumentsTexts[index] ?? JSON.stringify(call.params ?? {});
    problem ??= argumentsProblem(functionNamed(plan, call.name), argumentsText);
    return { id: ids[index] ?? toolCallId(), type: 'function', function: { name: call.name, arguments: argumentsText } };
  });
  const finishReason: ChatFinishReason = toolCalls.length > 0 ? (plan.legacy ? 'function_call' : 'tool_calls') : generated.finishReason;
  return { text: generated.text, toolCalls, legacy: plan.legacy, finishReason, promptTokens: generated.promptTokens, completionTokens: generated.completionTokens, ...(problem ? { problem } : {}) };
}

async function forcedCallAttempt(lease: SequenceLease, request: ChoiceRequest, plan: ToolPlan, options: GenerateOptions): Promise<Attempt> {
  const emit = request.emit;
  const id = toolCallId();
  const call = await generateForcedCall(lease, request.history, plan, {
    ...options,
    defaultCap: STRUCTURED_DEFAULT_MAX_TOKENS,
    argumentsGrammar: argumentsGrammar(lease),
    ...(emit
      ? {
          onCallStart: (name: string) =>
            emit(plan.legacy ? { type: 'function-call-delta', choice: 0, name, argumentsDelta: '' } : { type: 'tool-call-delta', choice: 0, index: 0, id, name, argumentsDelta: '' }),
          onText: (text: string) =>
            emit(plan.legacy ? { type: 'function-call-delta', choice: 0, argumentsDelta: text } : { type: 'tool-call-delta', choice: 0, index: 0, argumentsDelta: text }),
        }
      : {}),
  });
  const toolCalls: ToolCall[] = call.name ? [{ id, type: 'function', function: { name: call.name, arguments: call.argumentsText } }] : [];
  const complete = call.finishReason === 'stop' && call.name !== '';
  const problem = complete ? argumentsProblem(functionNamed(plan, call.name), call.argumentsText) : undefined;
  const finishReason: ChatFinishReason = !complete ? 'length' : plan.legacy ? 'function_call' : 'tool_calls';
  return { text: '', toolCalls, legacy: plan.legacy, finishReason, promptTokens: call.promptTokens, completionTokens: call.completionTokens, ...(problem ? { problem } : {}) };
}

function attempt(lease: SequenceLease, request: ChoiceRequest, options: GenerateOptions): Promise<Attempt> {
  const plan = request.tools;
  if (!plan) return textAttempt(lease, request, options);
  if (plan.mode.kind === 'auto') return autoToolsAttempt(lease, request, plan, options);
  return forcedCallAttempt(lease, request, plan, options);
}

/** Another seed for the one retry of an answer that failed its schema check. */
function retrySeed(seed: number | undefined): number {
  return seed === undefined ? Math.floor(Math.random() * 2 ** 31) : seed + 1_000_003;
}

export async function generateChatChoice(lease: SequenceLease, request: ChoiceRequest, options: GenerateOptions): Promise<ChoiceOutcome> {
  const first = await attempt(lease, request, options);
  if (first.problem === undefined) return first;
  if (request.emit) throw invalidModelOutput(request.modelName, first.problem);
  await lease.sequence.clearHistory();
  const second = await attempt(lease, request, { ...options, sampling: { ...options.sampling, seed: retrySeed(options.sampling.seed) } });
  if (second.problem !== undefined) throw invalidModelOutput(request.modelName, second.problem);
  return { ...second, completionTokens: first.completionTokens + second.completionTokens };
}
