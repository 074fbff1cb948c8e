/**
 * Token counting with OpenAI's BPE encodings (gpt-tokenizer). Used to estimate prompt
 * length before a request leaves (context-window checks) and to count usage for providers
 * that have no tokenizer of their own (the mock). Special-token text such as
 * "<|endoftext|>" in user input is counted as plain text, never rejected.
 *
 * Counting is linear in the text's length whatever its content: text is encoded span by
 * span (bounded-spans.ts), exactly for ordinary text; a run longer than 256 characters
 * without a break (a "word" no language has) is cut into chunks and counted with one extra
 * token per cut, a sound over-count. `count` and `countChat` stay synchronous for callers
 * that must be; request handlers use `countAsync`/`countChatAsync`, which yield to the
 * event loop every few milliseconds and can stop as soon as the count passes a limit.
 */
import type { ChatMessage, Tool } from '../openai/chat-completion-request.js';
import { boundedSpans, MAX_PIECE_CHARS, SPAN_CHARS } from './bounded-spans.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';

export type EncodingName = 'cl100k_base' | 'o200k_base';

export interface TokenCounter {
  readonly encoding: EncodingName;
  encode(text: string): number[];
  /**
   * Raw decode. gpt-tokenizer keeps one streaming TextDecoder per process: tokens ending
   * inside a character leave bytes behind that corrupt the next decode. Use
   * `decodeTokens` of providers/mock/token-decoding.ts for safe, boundary-aware decoding.
   */
  decode(tokens: number[]): string;
  /** Tokens of a text, synchronously (linear time, but a large text still takes a while: see countAsync). */
  count(text: string): number;
  /** Tokens of a chat prompt, with OpenAI's per-message framing (cookbook formula). */
  countChat(messages: ChatMessage[], tools?: Tool[]): number;
  /**
   * Like `count`, yielding to the event loop every few milliseconds. With `limit`, stops as
   * soon as the count passes it and returns what was counted so far (more than `limit`,
   * at most the full count).
   */
  countAsync(text: string, options?: CountOptions): Promise<number>;
  /** Like `countChat`, yielding to the event loop; `limit` as for `countAsync`. */
  countChatAsync(messages: ChatMessage[], tools?: Tool[], options?: CountOptions): Promise<number>;
  /**
   * Like `encode`, yielding to the event loop every few milliseconds. With `limit`, stops
   * once more than `limit` tokens are encoded: the result is then a prefix (longer than
   * `limit`) of what `encode` returns, the same tokens.
   */
  encodeAsync(text: string, options?: CountOptions): Promise<number[]>;
}

export interface CountOptions {
  /** Stop once the count is above this. */
  limit?: number;
}

export interface Encoding {
  encode(text: string, options?: { disallowedSpecial?: Set<string> }): number[];
  countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
  decode(tokens: number[]): string;
  clearMergeCache(): void;
}

/** An encoding and its pre-tokenizer split pattern. */
export interface EncodingParts {
  implementation: Encoding;
  splitPattern: RegExp;
}

const plainText = { disallowedSpecial: new Set<string>() };

/** Work between two yields of the async counts. */
const YIELD_AFTER_MS = 8;

/**
 * gpt-tokenizer caches the BPE of up to 100,000 pieces in a Map used as an LRU; once full,
 * every insertion scans the deleted entries at the Map's front and counting becomes ~100x
 * slower for the rest of the process (400k characters of CJK: 0.15 s fresh, 15 s after a
 * base64-like text had filled it). Each piece encoded inserts at most one entry, and a
 * piece has at least one character: clearing the cache before this many characters went
 * through it since the last clear keeps it from ever filling.
 */
const MERGE_CACHE_CLEAR_CHARS = 90_000;

/** The longest token of cl100k_base and o200k_base, in UTF-8 bytes (checked in the tests). */
export const LONGEST_TOKEN_BYTES = 128;

async function importEncoding(name: EncodingName): Promise<EncodingParts> {
  const patterns = await import('gpt-tokenizer/encodingParams/constants');
  if (name === 'o200k_base') {
    return { implementation: (await import('gpt-tokenizer/encoding/o200k_base')) as Encoding, splitPattern: patterns.O200K_TOKEN_SPLIT_REGEX };
  }
  return { implementation: (await import('gpt-tokenizer/encoding/cl100k_base')) as Encoding, splitPattern: patterns.CL100K_TOKEN_SPLIT_REGEX };
}


/** Text that stands for a message's content when counting its tokens. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (part && typeof part === 'object') {
      const record = part as Record<string, unknown>;
      if (typeof record.text === 'string') text += record.text;
      else if (typeof record.refusal === 'string') text += record.refusal;
    }
  }
  return text;
}

/** Images are billed by size; without fetching them, count a low-detail image (85 tokens). */
const IMAGE_TOKENS = 85;

function imageCount(content: unknown): number {
  if (!Array.isArray(content)) return 0;
  let images = 0;
  for (const part of content) if (part && (part as { type?: unknown }).type === 'image_url') images++;
  return images;
}

/** A chat prompt as the counts see it: framing tokens, and the texts to count. */
interface ChatParts {
  fixed: number;
  texts: string[];
}

function chatParts(messages: ChatMessage[], tools: Tool[] | undefined): ChatParts {
  let fixed = 3; // every reply is primed with <|start|>assistant<|message|>
  const texts: string[] = [];
  for (const message of messages) {
    fixed += 3;
    texts.push(message.role, contentText((message as { content?: unknown }).content));
    fixed += IMAGE_TOKENS * imageCount((message as { content?: unknown }).content);
    if ('name' in message && typeof message.name === 'string') {
      fixed += 1;
      texts.push(message.name);
    }
    if (message.role === 'assistant') {
      for (const call of message.tool_calls ?? []) {
        fixed += 3;
        texts.push(call.function.name, call.function.arguments);
      }
      if (message.function_call) {
        fixed += 3;
        texts.push(message.function_call.name, message.function_call.arguments);
      }
    }
    if (message.role === 'tool') texts.push(message.tool_call_id);
  }
  if (tools && tools.length > 0) texts.push(JSON.stringify(tools));
  return { fixed, texts };
}

export function createTokenCounter(encoding: EncodingName, { implementation, splitPattern }: EncodingParts): TokenCounter {
  let charactersSinceClear = 0;
  /** Call before encoding `length` characters (see MERGE_CACHE_CLEAR_CHARS). */
  const beforeEncoding = (length: number) => {
    if (charactersSinceClear + length > MERGE_CACHE_CLEAR_CHARS) {
      implementation.clearMergeCache();
      charactersSinceClear = 0;
    }
    charactersSinceClear += length;
  };
  const countSlice = (text: string) => {
    beforeEncoding(text.length);
    return implementation.countTokens(text, plainText);
  };
  const encodeSlice = (text: string) => {
    beforeEncoding(text.length);
    return implementation.encode(text, plainText);
  };
  const countSpan = (text: string, start: number, end: number, forced: boolean) => countSlice(text.slice(start, end)) + (forced ? 1 : 0);
  /** A text this short holds no piece to cut and takes a few milliseconds at most. */
  const short = (text: string) => text.length <= MAX_PIECE_CHARS;
  const count = (text: string): number => {
    if (text.length === 0) return 0;
    if (short(text)) return countSlice(text);
    let total = 0;
    for (const span of boundedSpans(text, splitPattern)) total += countSpan(text, span.start, span.end, span.forced);
    return total;
  };
  const countAsync = async (text: string, limit: number): Promise<number> => {
    if (text.length <= SPAN_CHARS) return count(text);
    let total = 0;
    let since = performance.now();
    for (const span of boundedSpans(text, splitPattern)) {
      total += countSpan(text, span.start, span.end, span.forced);
      if (total > limit) return total;
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await yieldToEventLoop();
        since = performance.now();
      }
    }
    return total;
  };
  const encode = (text: string): number[] => {
    if (short(text)) return encodeSlice(text);
    const tokens: number[] = [];
    for (const span of boundedSpans(text, splitPattern)) {
      for (const token of encodeSlice(text.slice(span.start, span.end))) tokens.push(token);
    }
    return tokens;
  };
  const encodeAsync = async (text: string, limit: number): Promise<number[]> => {
    if (text.length <= SPAN_CHARS) return encode(text);
    const tokens: number[] = [];
    let since = performance.now();
    for (const span of boundedSpans(text, splitPattern)) {
      for (const token of encodeSlice(text.slice(span.start, span.end))) tokens.push(token);
      if (tokens.length > limit) return tokens;
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await yieldToEventLoop();
        since = performance.now();
      }
    }
    return tokens;
  };
  return {
    encoding,
    encode,
    encodeAsync: (text, options) => encodeAsync(text, options?.limit ?? Number.POSITIVE_INFINITY),
    decode: (tokens) => implementation.decode(tokens),
    count,
    countChat(messages, tools) {
      const parts = chatParts(messages, tools);
      return parts.texts.reduce((total, text) => total + count(text), parts.fixed);
    },
    countAsync: (text, options) => countAsync(text, options?.limit ?? Number.POSITIVE_INFINITY),
    async countChatAsync(messages, tools, options) {
      const limit = options?.limit ?? Number.POSITIVE_INFINITY;
      const parts = chatParts(messages, tools);
      let total = parts.fixed;
      for (const text of parts.texts) {
        if (total > limit) break;
        total += await countAsync(text, limit - total);
      }
      return total;
    },
  };
}

/** Loads encodings once and shares them; created once per server and passed in. */
export class TokenCounters {
  readonly #loaded = new Map<EncodingName, Promise<TokenCounter>>();

  get(encoding: EncodingName): Promise<TokenCounter> {
    let counter = this.#loaded.get(encoding);
    if (!counter) {
      counter = importEncoding(encoding).then((parts) => createTokenCounter(encoding, parts));
      this.#loaded.set(encoding, counter);
    }
    return counter;
  }
}

/** An upper bound on the tokens of a text: no token is shorter than one UTF-8 byte. */
export function tokenUpperBound(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * A lower bound on the tokens of a text, in constant time: no token is longer than
 * LONGEST_TOKEN_BYTES and a text has at least as many UTF-8 bytes as UTF-16 code units.
 * Refuses a hopeless prompt at once, without reading it.
 */
export function tokenLowerBound(text: string): number {
  return Math.ceil(text.length / LONGEST_TOKEN_BYTES);
}
