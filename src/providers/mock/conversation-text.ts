/**
 * What the mock reads from a conversation: the text of the last user message (non-text
 * parts described in brackets) and the tool results the conversation ends with.
 */
import type { ChatMessage } from '../../openai/chat-completion-request.js';

/** Placeholders for content parts that are not text. */
const partPlaceholders: Record<string, string> = {
  image_url: '[image]',
  input_audio: '[audio]',
  file: '[file]',
};

/** A message's content as text: text parts as they are, other parts as placeholders, joined by a space. */
export function describeContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const pieces: string[] = [];
  for (const part of content) {
    if (typeof part !== 'object' || part === null) continue;
    const record = part as Record<string, unknown>;
    if (typeof record.text === 'string') pieces.push(record.text);
    else if (typeof record.refusal === 'string') pieces.push(record.refusal);
    else if (typeof record.type === 'string') pieces.push(partPlaceholders[record.type] ?? `[${record.type}]`);
  }
  return pieces.join(' ');
}

/** The text of the last user message; without one, of the last message that has content. */
export function lastUserText(messages: ChatMessage[]): string {
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index] as ChatMessage;
    if (message.role === 'user') return describeContent(message.content);
  }
  for (let index = messages.length - 1; index >= 0; index--) {
    const content = (messages[index] as { content?: unknown }).content;
    if (content !== null && content !== undefined) return describeContent(content);
  }
  return '';
}

export interface ToolResult {
  /** The function's name: from the assistant's call with the same id, else the tool call id. */
  name: string;
  content: string;
}

/** The tool (or legacy function) results at the end of the conversation, oldest first; empty when it does not end with one. */
export function trailingToolResults(messages: ChatMessage[]): ToolResult[] {
  let first = messages.length;
  while (first > 0 && (messages[first - 1]?.role === 'tool' || messages[first - 1]?.role === 'function')) first--;
  const callNames = new Map<string, string>();
  for (const message of messages.slice(0, first)) {
    if (message.role === 'assistant') for (const call of message.tool_calls ?? []) callNames.set(call.id, call.function.name);
  }
  return messages.slice(first).map((message) => {
    if (message.role === 'function') return { name: message.name, content: message.content ?? '' };
    const toolMessage = message as Extract<ChatMessage, { role: 'tool' }>;
    return {
      name: callNames.get(toolMessage.tool_call_id) ?? toolMessage.tool_call_id,
      content: describeContent(toolMessage.content),
    };
  });
}

/** The mock's answer to tool results: one line per result, "<name> returned: <content>". */
export function quoteToolResults(results: ToolResult[]): string {
  return results.map((result) => `${result.name} returned: ${result.content}`).join('\n');
}

/** Whether `name` occurs in `text` as a whole name (case-insensitive; not inside a longer name of letters, digits, _ or -). */
export function mentionsName(text: string, name: string): boolean {
  if (name === '') return false;
  const haystack = text.toLowerCase();
  const needle = name.toLowerCase();
  const isNameCharacter = (character: string | undefined) => character !== undefined && /[a-z0-9_-]/i.test(character);
  for (let index = haystack.indexOf(needle); index !== -1; index = haystack.indexOf(needle, index + 1)) {
    if (!isNameCharacter(haystack[index - 1]) && !isNameCharacter(haystack[index + needle.length])) return true;
  }
  return false;
}
