/**
 * The exact-match key of a request: SHA-256 of a canonical JSON form of everything that can
 * change the answer — model, messages (or prompt), tools, functions, tool_choice,
 * response_format, sampling parameters, n, token limits, stop, penalties, logprobs, seed and
 * any parameter this server does not know (it may reach an upstream). Left out, because they
 * never change the answer: `stream`, `stream_options`, `user`, `metadata`, `store`.
 *
 * Equivalences (same key): object key order; a parameter set to null and the parameter left
 * out; `n: 1` and no `n`; `stop: "x"` and `stop: ["x"]`; chat `max_tokens` and
 * `max_completion_tokens`; a message content given as one text part and as a string.
 */
import { createHash } from 'node:crypto';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';

const IGNORED = new Set(['model', 'stream', 'stream_options', 'user', 'metadata', 'store']);

/** JSON with object keys sorted and undefined values dropped, recursively. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return value === undefined ? 'null' : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const keys = Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A content given as a single text part is the same as the plain string. */
function normalizeContent(content: unknown): unknown {
  if (Array.isArray(content) && content.length === 1) {
    const part = content[0] as { type?: unknown; text?: unknown } | undefined;
    if (part && part.type === 'text' && typeof part.text === 'string' && Object.keys(part).length === 2) return part.text;
  }
  return content;
}

/** The request's parameters that matter, with the equivalences applied (messages / prompt included). */
function normalizedParameters(request: Record<string, unknown>): Record<string, unknown> {
  const normalized: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(request)) {
    if (IGNORED.has(name) || value === null || value === undefined) continue;
    normalized[name] = value;
  }
  if (normalized.n === 1) delete normalized.n;
  if (typeof normalized.stop === 'string') normalized.stop = [normalized.stop];
  return normalized;
}

export function normalizedChatRequest(request: ChatCompletionRequest): Record<string, unknown> {
  const normalized = normalizedParameters(request as Record<string, unknown>);
  if (normalized.max_tokens !== undefined && normalized.max_completion_tokens === undefined) {
    normalized.max_completion_tokens = normalized.max_tokens;
  }
  delete normalized.max_tokens;
  normalized.messages = request.messages.map((message) => {
    const copy: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(message)) if (value !== null && value !== undefined) copy[name] = value;
    if ('content' in copy) copy.content = normalizeContent(copy.content);
    return copy;
  });
  return normalized;
}

export function normalizedCompletionRequest(request: CompletionRequest): Record<string, unknown> {
  return normalizedParameters(request as Record<string, unknown>);
}

/** The cache key of a chat request for the configured model `modelName`. */
export function chatCacheKey(modelName: string, request: ChatCompletionRequest): string {
  return sha256(`chat/v1\n${modelName}\n${canonicalJson(normalizedChatRequest(request))}`);
}

export function completionCacheKey(modelName: string, request: CompletionRequest): string {
  return sha256(`completion/v1\n${modelName}\n${canonicalJson(normalizedCompletionRequest(request))}`);
}

/**
 * The semantic part of a chat request: the text of its last message when that is a user
 * message of text only, and the key of everything else (model, parameters, the earlier
 * messages), within which similar texts may share an answer. Null: not eligible.
 */
export function semanticSplit(modelName: string, request: ChatCompletionRequest): { scope: string; text: string } | null {
  const last = request.messages.at(-1);
  if (!last || last.role !== 'user') return null;
  let text: string;
  if (typeof last.content === 'string') text = last.content;
  else if (last.content.every((part) => part.type === 'text')) text = last.content.map((part) => (part as { text: string }).text).join('\n');
  else return null;
  if (text.trim() === '') return null;
  const normalized = normalizedChatRequest(request);
  normalized.messages = (normalized.messages as unknown[]).slice(0, -1);
  return { scope: sha256(`semantic/v1\n${modelName}\n${canonicalJson(normalized)}`), text };
}

/** Deterministic: temperature 0 or a seed. Only such requests are cached by default. */
export function isDeterministic(request: { temperature?: number | null | undefined; seed?: number | null | undefined }): boolean {
  return request.temperature === 0 || (request.seed !== null && request.seed !== undefined);
}
