/**
 * The mock's answer on the legacy `/v1/completions`: each prompt's completion is the
 * prompt itself (the mock "continues" a text by repeating it), cut by `stop` and by
 * `max_tokens` (16 when not set, as OpenAI does). Every prompt of an array prompt gets `n`
 * choices, numbered prompt × n + i; token-array prompts are decoded with the model's
 * tokenizer. `echo` puts the prompt before the completion; `suffix`, `best_of`,
 * `temperature` and the like are accepted and ignored.
 */
import type { CompletionRequest } from '../../openai/completion-request.js';
import type { CompletionLogprobs } from '../../openai/responses.js';
import type { TokenCounter } from '../../tokens/token-counter.js';
import { invalidRequest } from '../../errors/gateway-error.js';
import type { CompletionResult } from '../spec.js';
import { mockSystemFingerprint } from './chat-result.js';
import { completionLogprobs } from './fake-logprobs.js';
import { codePointLength } from './json-schema-check.js';
import { limitText, limitTextAsync, stopSequences, type LimitedText } from './text-limits.js';
import { decodeTokens, tokenPieces } from './token-decoding.js';

/** OpenAI's default `max_tokens` on /v1/completions. */
export const defaultCompletionMaxTokens = 16;

interface Prompt {
  text: string;
  tokens: number[];
}

function decodePrompt(counter: TokenCounter, tokens: number[]): Prompt {
  try {
    return { text: decodeTokens(counter, tokens).text, tokens };
  } catch {
    throw invalidRequest(`'prompt' contains a token id that the ${counter.encoding} tokenizer does not have.`, 'prompt');
  }
}

/** The request's prompts: a string, each string of an array, one token array, or each of several. */
export function promptsOf(prompt: CompletionRequest['prompt'], counter: TokenCounter): Prompt[] {
  if (typeof prompt === 'string') return [{ text: prompt, tokens: counter.encode(prompt) }];
  if (prompt.every((item): item is number => typeof item === 'number')) return [decodePrompt(counter, prompt)];
  return prompt.map((item) => (typeof item === 'string' ? { text: item, tokens: counter.encode(item) } : decodePrompt(counter, item)));
}

/** `promptsOf` for prompts of any size: strings encoded yielding to the event loop. */
export async function promptsOfAsync(prompt: CompletionRequest['prompt'], counter: TokenCounter): Promise<Prompt[]> {
  if (typeof prompt === 'string') return [{ text: prompt, tokens: await counter.encodeAsync(prompt) }];
  if (prompt.every((item): item is number => typeof item === 'number')) return [decodePrompt(counter, prompt)];
  const prompts: Prompt[] = [];
  for (const item of prompt) prompts.push(typeof item === 'string' ? { text: item, tokens: await counter.encodeAsync(item) } : decodePrompt(counter, item));
  return prompts;
}

export function completionResult(request: CompletionRequest, counter: TokenCounter): CompletionResult {
  const prompts = promptsOf(request.prompt, counter);
  const stop = stopSequences(request.stop);
  const maxTokens = request.max_tokens ?? defaultCompletionMaxTokens;
  return buildCompletionResult(request, counter, prompts, prompts.map((prompt) => limitText(counter, prompt.text, { stop, maxTokens })));
}

/** `completionResult` for prompts of any size: encoded, and the echo limited, yielding to the event loop. Same result. */
export async function completionResultAsync(request: CompletionRequest, counter: TokenCounter): Promise<CompletionResult> {
  const prompts = await promptsOfAsync(request.prompt, counter);
  const stop = stopSequences(request.stop);
  const maxTokens = request.max_tokens ?? defaultCompletionMaxTokens;
  const limits: LimitedText[] = [];
  for (const prompt of prompts) limits.push(await limitTextAsync(counter, prompt.text, { stop, maxTokens }));
  return buildCompletionResult(request, counter, prompts, limits);
}

function buildCompletionResult(request: CompletionRequest, counter: TokenCounter, prompts: Prompt[], limits: LimitedText[]): CompletionResult {
  const choiceCount = request.n ?? 1;
  const echo = request.echo === true;
  const topCount = request.logprobs;

  const choices: CompletionResult['choices'] = [];
  let promptTokens = 0;
  let completionTokens = 0;
  prompts.forEach((prompt, promptIndex) => {
    const limited = limits[promptIndex] as LimitedText;
    let logprobs: CompletionLogprobs | null = null;
    if (topCount !== null && topCount !== undefined) {
      const promptPieces = echo ? tokenPieces(counter, prompt.tokens) : [];
      logprobs = completionLogprobs([...promptPieces, ...tokenPieces(counter, limited.tokens)], topCount, {
        // Offsets count from the start of the prompt, echoed or not, as OpenAI's do.
        startOffset: echo ? 0 : codePointLength(prompt.text),
        unscoredCount: promptPieces.length > 0 ? 1 : 0,
      });
    }
    for (let copy = 0; copy < choiceCount; copy++) {
      choices.push({
        index: promptIndex * choiceCount + copy,
        text: echo ? prompt.text + limited.text : limited.text,
        finishReason: limited.finishReason,
        logprobs,
      });
    }
    promptTokens += prompt.tokens.length;
    completionTokens += limited.tokens.length * choiceCount;
  });

  return {
    systemFingerprint: mockSystemFingerprint,
    choices,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}
