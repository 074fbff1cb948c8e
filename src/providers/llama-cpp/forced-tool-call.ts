/**
 * A function call the model must make (`tool_choice: "required"` or a named function): the
 * prompt is the chat template's own rendering of the conversation and the functions, then
 * the template's function-call syntax is written into the model's turn by us — the call
 * prefix, then (for "required") the function name chosen by the model under a grammar that
 * allows only the declared names, then the parameters prefix — and the arguments are
 * generated under the grammar of that function's schema. The model thus calls in the
 * syntax it was trained on, and the call cannot be anything but one of the functions.
 */
import type { ChatHistoryItem, LlamaGrammar, LlamaText, Token } from 'node-llama-cpp';
import type { SequenceLease } from './loaded-models.js';
import { completionBudget, withOpenTurn, type GenerateOptions } from './generate.js';
import { finishReason } from './generation-options.js';
import { libraryFunctions, type PlannedFunction, type ToolPlan } from './tool-plan.js';

export interface ForcedCall {
  name: string;
  argumentsText: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

export interface ForcedCallOptions extends GenerateOptions {
  /** Grammar of a function's arguments (cached by the caller). */
  argumentsGrammar(definition: PlannedFunction): Promise<LlamaGrammar>;
  /** Streams the call: the name once known, then the argument text as generated. */
  onCallStart?: (name: string) => void;
}

/** `{{functionName}}` in the template's strings replaced. */
function withFunctionName(lib: SequenceLease['loaded']['lib'], text: string | LlamaText, name: string): LlamaText {
  return lib.LlamaText(text).mapValues((value) => (typeof value === 'string' ? value.replaceAll('{{functionName}}', name) : value));
}

/** A grammar that accepts exactly one of the names. */
function namesGrammar(lease: SequenceLease, names: string[]): Promise<LlamaGrammar> {
  const alternatives = names.map((name) => JSON.stringify(name)).join(' | ');
  return lease.loaded.model.llama.createGrammar({ grammar: `root ::= ${alternatives}` });
}

export async function generateForcedCall(lease: SequenceLease, history: ChatHistoryItem[], plan: ToolPlan, options: ForcedCallOptions): Promise<ForcedCall> {
  const { lib, model, chatWrapper } = lease.loaded;
  const tokenizer = model.tokenizer;
  const { contextText } = chatWrapper.generateContextState({
    chatHistory: withOpenTurn(history),
    availableFunctions: libraryFunctions(plan.functions),
    documentFunctionParams: true,
  });
  const promptTokens = contextText.tokenize(tokenizer).length;
  let budget = completionBudget(lease, promptTokens, options);
  const syntax = chatWrapper.settings.functions;
  const opening = lib.LlamaText([contextText, syntax.parallelism?.call.sectionPrefix ?? '', syntax.call.prefix]);

  const completion = new lib.LlamaCompletion({ contextSequence: lease.sequence, autoDisposeSequence: false });
  const run = async (tokens: Token[], maxTokens: number, grammar: LlamaGrammar, onText?: (text: string) => void) => {
    const meter = lease.sequence.tokenMeter;
    const before = meter.usedOutputTokens;
    // LlamaCompletion puts the BOS token in front itself.
    const input = tokens[0] === model.tokens.bos ? tokens.slice(1) : tokens;
    const result = await completion.generateCompletionWithMeta(input, {
      ...options.sampling,
      customStopTriggers: undefined,
      maxTokens,
      grammar,
      signal: options.signal,
      ...(onText ? { onTextChunk: onText } : {}),
    });
    return { result, generated: meter.usedOutputTokens - before };
  };

  try {
    let name: string;
    let completionTokens = 0;
    const openingTokens = opening.tokenize(tokenizer);
    if (plan.mode.kind === 'named') {
      name = plan.mode.name;
    } else if (plan.functions.length === 1) {
      name = plan.functions[0]!.name;
    } else {
      const names = plan.functions.map((definition) => definition.name);
      const chosen = await run(openingTokens, Math.max(1, budget), await namesGrammar(lease, names));
      completionTokens += chosen.generated;
      budget -= chosen.generated;
      name = chosen.result.response;
      if (!names.includes(name)) {
        // Cut by the token limit (or the context) before the name was complete.
        return { name: '', argumentsText: '', finishReason: 'length', promptTokens, completionTokens: completionTokens + openingTokens.length - promptTokens };
      }
    }
    const definition = plan.functions.find((candidate) => candidate.name === name)!;
    options.onCallStart?.(name);
    const callTokens = lib.LlamaText([opening, name, withFunctionName(lib, syntax.call.paramsPrefix, name)]).tokenize(tokenizer);
    const syntaxTokens = callTokens.length - promptTokens - completionTokens;
    budget -= syntaxTokens;
    completionTokens += syntaxTokens;
    if (budget <= 0) return { name, argumentsText: '', finishReason: 'length', promptTokens, completionTokens };
    const argumentsRun = await run(callTokens, budget, await options.argumentsGrammar(definition), options.onText);
    completionTokens += argumentsRun.generated;
    return { name, argumentsText: argumentsRun.result.response, finishReason: finishReason(argumentsRun.result.metadata.stopReason), promptTokens, completionTokens };
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}
