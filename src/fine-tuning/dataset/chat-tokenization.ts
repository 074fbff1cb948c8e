/**
 * One training example → the tokens a local llama.cpp model trains on and a loss mask, using
 * the model's own chat template (a node-llama-cpp chat wrapper, as the llama-cpp provider
 * renders prompts). `lossMask[i]` is 1 iff token i is written by an assistant message with
 * weight 1: its text, its calls' syntax (not their results) and the end-of-turn token(s)
 * that close its turn (the first stop-generation trigger of the wrapper, e.g. `<|im_end|>`).
 *
 * How: the conversation is rendered as growing prefixes — each model turn opened (the
 * generation prompt), then after each text or call group of it, then closed (followed by an
 * empty user turn) — and each rendering's new tokens are attributed to what was added.
 * Templates are normally prefix-stable (each rendering extends the previous one token for
 * token); when one is not, the tokens that changed are dropped from the sequence and the
 * new rendering's are taken instead, labelled by what was added (`exact: false`). The
 * sequence ends at its last trained token: in a causal model later tokens cannot change the
 * loss (this also drops an unanswered final call's placeholder result).
 */
import type { ChatHistoryItem, ChatModelFunctions, ChatWrapper, GbnfJsonSchema, LlamaText, Tokenizer } from 'node-llama-cpp';
import { toGrammarSchema } from '../../providers/llama-cpp/json-schema-grammar.js';
import type { NodeLlamaCpp } from '../../providers/llama-cpp/node-llama-cpp-module.js';
import { callSpanMask, findFirst, type CallPieces } from './call-span-mask.js';
import type { TrainingExample } from './example-types.js';
import { TokenizationError, trainingTurns, type ModelElement } from './training-history.js';

export interface TokenizedExample {
  tokens: number[];
  lossMask: number[];
  /** False when the template was not prefix-stable or a call could not be located (see above). */
  exact: boolean;
}

export interface ChatRenderer {
  /** node-llama-cpp's LlamaText (from the lazily imported module). */
  LlamaText: NodeLlamaCpp['LlamaText'];
  chatWrapper: ChatWrapper;
  tokenizer: Tokenizer;
}

const EMPTY_PARAMETERS = { type: 'object', properties: {}, additionalProperties: false };

/** The example's functions as the wrapper documents them (as the provider does for requests). */
export function exampleFunctions(example: TrainingExample): ChatModelFunctions | undefined {
  const definitions = [...(example.tools ?? []).map((tool) => tool.function), ...(example.functions ?? [])];
  if (definitions.length === 0) return undefined;
  const functions: Record<string, { description?: string; params: GbnfJsonSchema }> = {};
  for (const definition of definitions) {
    let params: GbnfJsonSchema;
    try {
      params = toGrammarSchema(definition.parameters ?? EMPTY_PARAMETERS, 'parameters', `the parameters of function '${definition.name}'`);
    } catch (error) {
      throw new TokenizationError((error as Error).message);
    }
    functions[definition.name] = { ...(definition.description ? { description: definition.description } : {}), params };
  }
  return functions as ChatModelFunctions;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const length = Math.min(a.length, b.length);
  let i = 0;
  while (i < length && a[i] === b[i]) i++;
  return i;
}

/**
 * Tokenizations of a piece rendered alone, to find it inside a rendering: as is, without a
 * leading space, and without leading whitespace tokens (alone, a piece may get the
 * tokenizer's space prefix that it does not get after other text).
 */
function variants(text: LlamaText, tokenizer: Tokenizer): number[][] {
  const plain = text.tokenize(tokenizer);
  let skip = 0;
  while (skip < plain.length - 1 && tokenizer.detokenize([plain[skip]!], true).trim() === '') skip++;
  return [plain, text.tokenize(tokenizer, 'trimLeadingSpace'), plain.slice(skip)];
}

export function tokenizeChatExample(renderer: ChatRenderer, example: TrainingExample): TokenizedExample {
  const { chatWrapper, tokenizer } = renderer;
  const availableFunctions = exampleFunctions(example);
  const render = (chatHistory: ChatHistoryItem[]) =>
    chatWrapper.generateContextState({ chatHistory, ...(availableFunctions ? { availableFunctions, documentFunctionParams: true } : {}) });
  const tokens: number[] = [];
  const lossMask: number[] = [];
  let exact = true;
  /** Appends the rendering's tokens beyond the sequence (re-syncing it if the rendering diverged); returns them. */
  const extend = (rendered: readonly number[]): number[] => {
    const common = commonPrefix(tokens, rendered);
    if (common < tokens.length) {
      exact = false;
      tokens.length = common;
      lossMask.length = common;
    }
    return rendered.slice(common);
  };
  const push = (part: readonly number[], mask: readonly number[]) => {
    tokens.push(...part);
    lossMask.push(...mask);
  };

  const history: ChatHistoryItem[] = [];
  for (const turn of trainingTurns(example)) {
    if (turn.kind !== 'model') {
      history.push({ type: turn.kind, text: turn.text });
      continue;
    }
    const response: Extract<ChatHistoryItem, { type: 'model' }>['response'] = [];
    const opened = extend(render([...history, { type: 'model', response: [] }]).contextText.tokenize(tokenizer));
    push(opened, opened.map(() => 0));
    let last: ModelElement | undefined;
    for (const element of turn.elements) {
      if (element.kind === 'text') response.push(element.text);
      else response.push(...element.calls);
      const part = extend(render([...history, { type: 'model', response: [...response] }]).contextText.tokenize(tokenizer));
      let mask: number[];
      if (element.kind === 'text') mask = part.map(() => (element.trained ? 1 : 0));
      else {
        const pieces: CallPieces[] = element.calls.map((call) => ({
          call: variants(chatWrapper.generateFunctionCall(call.name, call.params), tokenizer),
          result: variants(chatWrapper.generateFunctionCallResult(call.name, call.params, call.result), tokenizer),
        }));
        const suffix = chatWrapper.settings.functions.parallelism?.call.sectionSuffix;
        const found = callSpanMask(part, pieces, suffix === undefined ? [] : variants(renderer.LlamaText(suffix), tokenizer));
        if (!found) exact = false;
        mask = found && element.trained ? found : part.map(() => 0);
      }
      push(part, mask);
      last = element;
    }
    history.push({ type: 'model', response });
    // The turn's end: the first stop trigger in what closing the turn adds.
    const closed = render([...history, { type: 'user', text: '' }]);
    const closing = extend(closed.contextText.tokenize(tokenizer));
    const triggers = closed.stopGenerationTriggers.flatMap((trigger) => variants(trigger, tokenizer));
    const end = findFirst(closing, triggers, 0);
    if (!end) exact = false;
    const closingTokens = end ? closing.slice(0, end.end) : [];
    const trained = last?.kind === 'text' && last.trained ? 1 : 0;
    push(closingTokens, closingTokens.map(() => trained));
  }
  const length = lossMask.lastIndexOf(1) + 1;
  return { tokens: tokens.slice(0, length), lossMask: lossMask.slice(0, length), exact };
}
