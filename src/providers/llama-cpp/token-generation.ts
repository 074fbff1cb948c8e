/**
 * A token-by-token generation loop on a context sequence that reports OpenAI-style log
 * probabilities (chat `logprobs`/`top_logprobs`, legacy `logprobs`), which LlamaChat and
 * LlamaCompletion do not expose. Built on `LlamaContextSequence.evaluateWithMetadata`.
 *
 * What the logprobs are. node-llama-cpp's `probabilities`/`confidence` are a softmax over the
 * candidates *after its whole sampler chain*: token bias, repeat penalty, the grammar (applied
 * to all candidates whenever probabilities or confidence are asked for), then top-k → top-p →
 * temperature (logits / T). So they depend on the temperature, and top-k/top-p drop tokens
 * (renormalising the rest). Also note that the sequence-level defaults are topK 40, topP 0.95
 * (what LlamaChat/LlamaCompletion use when nothing is set) — with them, a token outside the
 * 40 best simply has no probability. OpenAI reports the model's own distribution, the same at
 * every temperature. So this module:
 * - samples *without* truncation unless the caller asks for it (`topK` > 0, `sampling.topP` <
 *   1): topK 0 (= whole vocabulary) and topP 1 are passed instead of the library's 40/0.95
 *   (OpenAI's own default is top_p 1). The sampled text for a seed therefore differs from
 *   LlamaChat's (which truncates to 40/0.95) for the same seed;
 * - reports the temperature-1 distribution: at temperature 0 (greedy; the greedy chain skips
 *   top-k/top-p and leaves logits alone) and 1 the library's numbers are used as they are;
 *   for any other temperature T they are un-tempered: log p_i = T·ln p'_i − logsumexp_j(T·ln
 *   p'_j). That needs the full candidate list even when no alternatives are asked for, and it
 *   is exact up to float32: candidates whose tempered probability underflowed to 0 (more than
 *   ~87·T nats below the best token) are missing from the normalisation — negligible for
 *   T ≥ 0.5, noticeable only for very small T on large vocabularies;
 * - the distribution is the one the sampler actually drew from apart from temperature and
 *   truncation: after repeat/presence/frequency penalties and the grammar. Grammar-forbidden
 *   tokens (probability 0) are never listed as alternatives, so a constrained token can have
 *   fewer than `topLogprobs` alternatives. With caller-requested truncation the logprobs are
 *   renormalised over the candidates top-k/top-p kept (the library cannot give more).
 *   A chosen token's probability is never 0; it is floored at −9999 (OpenAI's sentinel) anyway.
 *
 * Text. Each token's `token` string is its text decoded in context (SPM leading spaces kept)
 * and `bytes` its UTF-8. A token that is only part of a multi-byte UTF-8 character gets its raw
 * bytes from its vocabulary piece (`<0xE2>` byte-fallback tokens, byte-level BPE pieces; read
 * from `model.fileInfo.metadata.tokenizer.ggml.tokens`) and their garbled decoding (U+FFFD) as
 * `token`, like OpenAI: node-llama-cpp's detokenize returns a JS string, turning invalid UTF-8
 * into U+FFFD (or "" when decoded after context), so the raw bytes are not available from it.
 * The generated text itself is decoded per group of tokens that completes the characters.
 *
 * Stopping. At an end-of-generation token (not part of the text, no logprob entry), at
 * `maxTokens` (finish 'length'), at the first occurrence of a stop text (`stopTexts`, and the
 * grammar's own string stop triggers; finish 'stop'; the text ends before it), and on abort
 * (the abort reason is thrown once the current step is done; the sequence stays usable).
 * Logprob entries are kept for tokens that contribute at least one character to the returned
 * text: a token straddling the start of a stop text is kept, tokens inside it are dropped.
 * A grammar with `trimWhitespaceSuffix` (the JSON grammars) gets trailing whitespace trimmed.
 *
 * Streaming. `onToken` receives text as soon as it is safe: held back only while it could be
 * the start of a stop text (or trailing whitespace that a grammar trims) or while a UTF-8
 * character is incomplete. Each piece carries the logprob entries of the tokens whose text
 * starts in it. The pieces concatenate to the returned text and entries.
 *
 * Counting. `promptTokens` is the prompt's length; the sequence's prefix that already matches
 * the prompt is reused (not evaluated again), reported as `cachedPromptTokens`.
 * `completionTokens` counts every sampled token, including an end-of-generation token and
 * tokens cut off with a stop text — the same as the sequence token meter that generate.ts
 * uses (one "output" token per sampling step). (That meter counts the prompt's last token as
 * "output" too, so its input count is prompt length − 1.)
 *
 * Cost. Asking for the full distribution (`probabilities`) copies the whole vocabulary from
 * C++ into a JS Map per token; only `confidence` (the chosen token's probability) is asked for
 * when topLogprobs is 0 and the temperature is 0 or 1.
 */
import type { LlamaContextSequence, LlamaGrammar, LlamaModel, Token } from 'node-llama-cpp';
import type { CompletionLogprobs, TokenLogprob, TopLogprob } from '../../openai/responses.js';
import type { SamplingOptions } from './generation-options.js';
import { importNodeLlamaCpp } from './node-llama-cpp-module.js';

export interface TokenGenerationOptions {
  sampling: SamplingOptions;
  /** Keep only the k most likely tokens before sampling; unset or ≤ 0: no limit. */
  topK?: number;
  /** Tokens to sample at most (already sized by the caller to fit the context). */
  maxTokens: number;
  /** Custom stops: generation ends before the first one; the text excludes it. Empty ones are ignored. */
  stopTexts: string[];
  grammar?: LlamaGrammar;
  /** Alternatives to report per token (0: only the chosen token's logprob). */
  topLogprobs: number;
  signal: AbortSignal;
  /** Called as soon as text is safe to emit, with the logprob entries of the tokens starting in it. */
  onToken?: (piece: GeneratedPiece) => void;
}

export interface GeneratedPiece {
  text: string;
  logprobs: TokenLogprob[];
}

export interface TokenGenerationResult {
  text: string;
  /** One entry per token of `text`. */
  tokens: TokenLogprob[];
  finishReason: 'stop' | 'length';
  /** The prompt's length in tokens. */
  promptTokens: number;
  /** Of those, the ones already on the sequence (not evaluated again). */
  cachedPromptTokens: number;
  /** Tokens sampled, including an end-of-generation token and ones cut off with a stop text. */
  completionTokens: number;
}

/** OpenAI's logprob for a token that cannot occur. */
export const IMPOSSIBLE_LOGPROB = -9999;
/** Tokens of context given to detokenize, so a token's text is its continuation text. */
const DETOKENIZE_CONTEXT = 8;
/** Longest UTF-8 character, in bytes (= byte tokens held back at most). */
const MAX_UTF8_BYTES = 4;
const REPLACEMENT_CHARACTER = '\uFFFD';

interface Entry {
  logprob: TokenLogprob;
  /** Where the token's text starts in the generated text (UTF-16 units). */
  start: number;
  /** Where it ends (the text of a partial-UTF-8 group is given to its last token). */
  end: number;
}

export async function generateTokens(
  sequence: LlamaContextSequence,
  model: LlamaModel,
  promptTokens: Token[],
  options: TokenGenerationOptions,
): Promise<TokenGenerationResult> {
  if (promptTokens.length === 0) throw new Error('generateTokens needs at least one prompt token');
  options.signal.throwIfAborted();
  const { sampling } = options;
  const temperature = Math.max(0, sampling.temperature);
  const topLogprobs = Math.max(0, Math.floor(options.topLogprobs));
  const untemper = temperature > 0 && temperature !== 1;
  const metadata = topLogprobs > 0 || untemper ? ({ probabilities: true, confidence: true } as const) : ({ confidence: true } as const);
  const stops = [...options.stopTexts, ...grammarStopTexts(options.grammar)].filter((stop) => stop.length > 0);
  const trimWhitespace = options.grammar?.trimWhitespaceSuffix === true;
  const describeToken = tokenDescriber(model);

  // Reuse the sequence's prefix that matches the prompt; evaluate at least the last token.
  const cached = Math.min(sequence.compareContextTokens(promptTokens).firstDifferentIndex, promptTokens.length - 1);
  if (sequence.nextTokenIndex > cached) await sequence.eraseContextTokenRanges([{ start: cached, end: sequence.nextTokenIndex }]);

  const generated: Token[] = [];
  const grammarEvaluationState = options.grammar
    ? new (await importNodeLlamaCpp()).LlamaGrammarEvaluationState({ model, grammar: options.grammar })
    : undefined;
  const penalty = sampling.repeatPenalty;
  const punishLast = penalty === false ? 0 : (penalty.lastTokens ?? 64);
  const repeatPenalty =
    penalty === false || punishLast <= 0
      ? undefined
      : {
          // As LlamaCompletion: the last generated tokens, new lines not punished unless asked.
          punishTokens: () => {
            let tokens = generated.slice(-punishLast);
            if (penalty.punishTokensFilter) tokens = penalty.punishTokensFilter(tokens);
            const nl = model.tokens.nl;
            if (!penalty.penalizeNewLine && nl != null) tokens = tokens.filter((token) => token !== nl);
            return tokens;
          },
          maxPunishTokens: punishLast,
          ...(penalty.penalty === undefined ? {} : { penalty: penalty.penalty }),
          ...(penalty.frequencyPenalty === undefined ? {} : { frequencyPenalty: penalty.frequencyPenalty }),
          ...(penalty.presencePenalty === undefined ? {} : { presencePenalty: penalty.presencePenalty }),
        };

  let text = '';
  const entries: Entry[] = [];
  let emittedText = 0;
  let emittedEntries = 0;
  /** Tokens of an incomplete UTF-8 character, with their logprob entries. */
  let pending: Array<{ token: Token; logprob: TokenLogprob }> = [];
  let completionTokens = 0;
  let stopAt: number | undefined;
  let searchFrom = 0;

  const contextBefore = (count: number): Token[] => {
    const all = generated.length - count;
    const fromGenerated = generated.slice(Math.max(0, all - DETOKENIZE_CONTEXT), all);
    const need = DETOKENIZE_CONTEXT - fromGenerated.length;
    return need > 0 ? [...promptTokens.slice(-need), ...fromGenerated] : fromGenerated;
  };
  const describe = (token: Token, context: Token[], logprob: number): TopLogprob => {
    const { text: piece, bytes } = describeToken(token, context);
    return { token: piece, logprob, bytes };
  };

  /** Appends the pending tokens' text (decoded together) to the text. */
  const commitPending = () => {
    if (pending.length === 0) return;
    const groupText = model.detokenize(
      pending.map((item) => item.token),
      false,
      contextBefore(pending.length),
    );
    const start = text.length;
    text += groupText;
    pending.forEach((item, index) => entries.push({ logprob: item.logprob, start, end: index === pending.length - 1 ? text.length : start }));
    pending = [];
    if (stopAt === undefined && stops.length > 0) {
      for (const stop of stops) {
        const at = text.indexOf(stop, searchFrom);
        if (at !== -1 && (stopAt === undefined || at < stopAt)) stopAt = at;
      }
      const longest = Math.max(...stops.map((stop) => stop.length));
      searchFrom = Math.max(0, text.length - longest + 1);
    }
  };

  /** How much of the text may be emitted now. */
  const safeEnd = (): number => {
    if (stopAt !== undefined) return stopAt;
    let end = text.length;
    for (const stop of stops) {
      for (let length = Math.min(stop.length - 1, text.length - emittedText); length > 0; length--) {
        if (text.endsWith(stop.slice(0, length))) {
          end = Math.min(end, text.length - length);
          break;
        }
      }
    }
    if (trimWhitespace) end = Math.min(end, emittedText + text.slice(emittedText, end).trimEnd().length);
    return end;
  };

  const emitUpTo = (end: number) => {
    const from = emittedEntries;
    while (emittedEntries < entries.length) {
      const entry = entries[emittedEntries]!;
      if (!(entry.start < end || (entry.start === entry.end && entry.start <= end))) break;
      emittedEntries++;
    }
    if (end <= emittedText && emittedEntries === from) return;
    const piece: GeneratedPiece = {
      text: text.slice(emittedText, Math.max(end, emittedText)),
      logprobs: entries.slice(from, emittedEntries).map((entry) => entry.logprob),
    };
    emittedText = Math.max(end, emittedText);
    options.onToken?.(piece);
  };

  let finishReason: 'stop' | 'length' = 'length';
  const iterator = sequence.evaluateWithMetadata(promptTokens.slice(cached), metadata, {
    temperature,
    topK: options.topK !== undefined && options.topK > 0 ? options.topK : 0,
    topP: sampling.topP !== undefined && sampling.topP < 1 ? sampling.topP : 1,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    ...(grammarEvaluationState ? { grammarEvaluationState } : {}),
    ...(repeatPenalty ? { repeatPenalty } : {}),
    yieldEogToken: true,
  });
  try {
    if (options.maxTokens <= 0) return finish('length');
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        finishReason = 'stop';
        break;
      }
      completionTokens++;
      const output = step.value;
      if (model.isEogToken(output.token)) {
        finishReason = 'stop';
        break;
      }
      const context = contextBefore(0);
      generated.push(output.token);
      pending.push({ token: output.token, logprob: tokenLogprob(output, context) });
      const group = model.detokenize(
        pending.map((item) => item.token),
        false,
        contextBefore(pending.length),
      );
      const incomplete = group.endsWith(REPLACEMENT_CHARACTER) && pending.length < MAX_UTF8_BYTES && !model.isSpecialToken(output.token);
      if (!incomplete) {
        commitPending();
        emitUpTo(safeEnd());
      }
      if (stopAt !== undefined) {
        finishReason = 'stop';
        break;
      }
      if (completionTokens >= options.maxTokens) break;
      if (options.signal.aborted) throw options.signal.reason;
    }
  } finally {
    // Ends the evaluation (disposes its sampler) before the caller reuses the sequence.
    await iterator.return();
  }
  return finish(finishReason);

  function finish(reason: 'stop' | 'length'): TokenGenerationResult {
    commitPending();
    let end = stopAt ?? text.length;
    if (trimWhitespace) end = text.slice(0, end).trimEnd().length;
    emitUpTo(end);
    const kept = entries.filter((entry) => entry.start < end || (entry.start === entry.end && entry.start <= end));
    return {
      text: text.slice(0, end),
      tokens: kept.map((entry) => entry.logprob),
      finishReason: reason,
      promptTokens: promptTokens.length,
      cachedPromptTokens: cached,
      completionTokens,
    };
  }

  function tokenLogprob(output: { token: Token; confidence?: number; probabilities?: Map<Token, number> }, context: Token[]): TokenLogprob {
    const logprobOf = logprobFunction(output.probabilities, untemper ? temperature : 1);
    const chosenProbability = output.probabilities?.get(output.token) ?? output.confidence ?? 0;
    const top: TopLogprob[] = [];
    if (topLogprobs > 0 && output.probabilities) {
      for (const [token, probability] of output.probabilities) {
        if (top.length >= topLogprobs || probability <= 0) break;
        top.push(describe(token, context, logprobOf(probability)));
      }
    }
    return { ...describe(output.token, context, logprobOf(chosenProbability)), top_logprobs: top };
  }
}

/**
 * Probability from the library → natural-log probability at temperature 1. For temperature
 * T ≠ 1 the tempered distribution p' is un-tempered: T·ln p' − logsumexp(T·ln p').
 */
function logprobFunction(probabilities: Map<Token, number> | undefined, temperature: number): (probability: number) => number {
  const floor = (logprob: number) => (Number.isFinite(logprob) ? Math.max(IMPOSSIBLE_LOGPROB, logprob) : IMPOSSIBLE_LOGPROB);
  if (temperature === 1 || !probabilities) return (probability) => floor(Math.log(probability));
  let max = -Infinity;
  for (const probability of probabilities.values()) if (probability > 0) max = Math.max(max, temperature * Math.log(probability));
  let sum = 0;
  for (const probability of probabilities.values()) if (probability > 0) sum += Math.exp(temperature * Math.log(probability) - max);
  const logNormalizer = max + Math.log(sum);
  return (probability) => (probability > 0 ? floor(temperature * Math.log(probability) - logNormalizer) : IMPOSSIBLE_LOGPROB);
}

/** String stop triggers of a grammar (e.g. the JSON grammars' "\n\n\n\n"); token triggers are left out. */
function grammarStopTexts(grammar: LlamaGrammar | undefined): string[] {
  if (!grammar) return [];
  const texts: string[] = [];
  for (const trigger of grammar.stopGenerationTriggers) {
    const values: readonly unknown[] = typeof trigger === 'string' ? [trigger] : isTokenArray(trigger) ? trigger : trigger.values;
    if (values.every((value) => typeof value === 'string')) texts.push((values as string[]).join(''));
  }
  return texts;
}

function isTokenArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/** GPT-2 byte-level BPE: the printable character standing for each byte, reversed. */
let byteLevelDecoder: Map<string, number> | undefined;
function byteLevelBytes(piece: string): number[] | undefined {
  if (!byteLevelDecoder) {
    byteLevelDecoder = new Map();
    let extra = 0;
    for (let byte = 0; byte < 256; byte++) {
      const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
      byteLevelDecoder.set(String.fromCodePoint(printable ? byte : 256 + extra++), byte);
    }
  }
  const bytes: number[] = [];
  for (const character of piece) {
    const byte = byteLevelDecoder.get(character);
    if (byte === undefined) return undefined;
    bytes.push(byte);
  }
  return bytes;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function isCompleteUtf8(bytes: number[]): boolean {
  try {
    strictUtf8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * A token's text and raw bytes. Normally the text decoded in context and its UTF-8 bytes; a
 * token whose vocabulary piece stands for bytes that are not complete UTF-8 (an SPM `<0xE2>`
 * byte-fallback token, a byte-level BPE piece holding part of a character) gets those raw
 * bytes and their garbled decoding (U+FFFD) as text — decoding it in context would give ""
 * or a U+FFFD whose bytes are not the token's.
 */
function tokenDescriber(model: LlamaModel): (token: Token, context: Token[]) => { text: string; bytes: number[] } {
  const tokenizer = (model.fileInfo.metadata as { tokenizer?: { ggml?: { model?: unknown; tokens?: unknown } } }).tokenizer?.ggml;
  const pieces = Array.isArray(tokenizer?.tokens) ? (tokenizer.tokens as unknown[]) : undefined;
  const byteLevel = tokenizer?.model === 'gpt2';
  const partialBytes = new Map<Token, number[] | null>();
  const rawBytes = (token: Token): number[] | null => {
    let bytes = partialBytes.get(token);
    if (bytes === undefined) {
      const piece = pieces?.[token];
      bytes = null;
      if (typeof piece === 'string') {
        const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
        const raw = byteToken ? [Number.parseInt(byteToken[1]!, 16)] : byteLevel ? byteLevelBytes(piece) : undefined;
        if (raw && !isCompleteUtf8(raw)) bytes = raw;
      }
      partialBytes.set(token, bytes);
    }
    return bytes;
  };
  return (token, context) => {
    const raw = model.isSpecialToken(token) ? null : rawBytes(token);
    if (raw) return { text: lenientUtf8.decode(Uint8Array.from(raw)), bytes: raw };
    const text = model.detokenize([token], false, context);
    return { text, bytes: [...Buffer.from(text, 'utf8')] };
  };
}

/**
 * Chat logprob entries → a legacy completion's `logprobs`. `text_offset` counts code points
 * from `startOffset` (the length of an echoed prompt, say), following the tokens' bytes, so a
 * token that starts inside a multi-byte character gets that character's offset.
 * `top_logprobs` maps token text to logprob; alternatives with the same text keep the first
 * (most likely) one; `includeTop: false` sends `top_logprobs: null` instead.
 */
export function toCompletionLogprobs(tokens: TokenLogprob[], options: { startOffset?: number; includeTop?: boolean } = {}): CompletionLogprobs {
  const decoder = new TextDecoder();
  let offset = options.startOffset ?? 0;
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: options.includeTop === false ? null : [], text_offset: [] };
  for (const entry of tokens) {
    result.tokens.push(entry.token);
    result.token_logprobs.push(entry.logprob);
    result.text_offset.push(offset);
    const top: Record<string, number> = {};
    for (const alternative of entry.top_logprobs) {
      if (!Object.hasOwn(top, alternative.token)) Object.defineProperty(top, alternative.token, { value: alternative.logprob, enumerable: true, writable: true, configurable: true });
    }
    result.top_logprobs?.push(top);
    const bytes = entry.bytes ?? [...Buffer.from(entry.token, 'utf8')];
    offset += [...decoder.decode(Uint8Array.from(bytes), { stream: true })].length;
  }
  return result;
}
