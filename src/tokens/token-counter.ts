/**
 * Token counting with OpenAI's BPE encodings (gpt-tokenizer). Used to estimate prompt
 * length before a request leaves (context-window checks) and to count usage for providers
 * that have no tokenizer of their own (the mock). Special-token text such as
 * "<|endoftext|>" in user input is counted as plain text, never rejected.
 */
import type { ChatMessage, Tool } from '../openai/chat-completion-request.js';

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
  count(text: string): number;
  /** Tokens of a chat prompt, with OpenAI's per-message framing (cookbook formula). */
  countChat(messages: ChatMessage[], tools?: Tool[]): number;
}

interface Encoding {
  encode(text: string, options?: { disallowedSpecial?: Set<string> }): number[];
  decode(tokens: number[]): string;
}

const plainText = { disallowedSpecial: new Set<string>() };

async function importEncoding(name: EncodingName): Promise<Encoding> {
  if (name === 'o200k_base') return (await import('gpt-tokenizer/encoding/o200k_base')) as Encoding;
  return (await import('gpt-tokenizer/encoding/cl100k_base')) as Encoding;
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

export function createTokenCounter(encoding: EncodingName, implementation: Encoding): TokenCounter {
  const encode = (text: string) => implementation.encode(text, plainText);
  const count = (text: string) => (text.length === 0 ? 0 : encode(text).length);
  return {
    encoding,
    encode,
    decode: (tokens) => implementation.decode(tokens),
    count,
    countChat(messages, tools) {
      let total = 3; // every reply is primed with <|start|>assistant<|message|>
      for (const message of messages) {
        total += 3;
        total += count(message.role);
        total += count(contentText((message as { content?: unknown }).content));
        total += IMAGE_TOKENS * imageCount((message as { content?: unknown }).content);
        if ('name' in message && typeof message.name === 'string') total += 1 + count(message.name);
        if (message.role === 'assistant') {
          for (const call of message.tool_calls ?? []) total += 3 + count(call.function.name) + count(call.function.arguments);
          if (message.function_call) total += 3 + count(message.function_call.name) + count(message.function_call.arguments);
        }
        if (message.role === 'tool') total += count(message.tool_call_id);
      }
      if (tools && tools.length > 0) total += count(JSON.stringify(tools));
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
      counter = importEncoding(encoding).then((implementation) => createTokenCounter(encoding, implementation));
      this.#loaded.set(encoding, counter);
    }
    return counter;
  }
}

/** An upper bound on the tokens of a text: no token is shorter than one UTF-8 byte. */
export function tokenUpperBound(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
