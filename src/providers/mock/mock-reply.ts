/**
 * The mock's answer to a chat conversation, before limits and choices: function calls
 * (with arguments generated from each function's JSON Schema), or text. The text echoes
 * the last user message, or quotes the tool results the conversation ends with; with
 * `response_format` it becomes JSON (an instance of the schema, or {"echo": text}).
 */
import type { ChatCompletionRequest, FunctionDefinition, ResponseFormat } from '../../openai/chat-completion-request.js';
import { lastUserText, quoteToolResults, trailingToolResults } from './conversation-text.js';
import { isSchemaObject } from './json-schema-ref.js';
import { jsonSchemaInstance } from './json-schema-instance.js';
import { selectCalls } from './tool-selection.js';

export interface FunctionCallAnswer {
  name: string;
  /** JSON text of the arguments. */
  arguments: string;
}

export type ChatAnswer =
  | { kind: 'text'; text: string }
  | { kind: 'tool-calls'; calls: FunctionCallAnswer[] }
  | { kind: 'function-call'; call: FunctionCallAnswer };

/** Arguments for a call: a valid instance of the function's parameters (an object; `{}` without parameters). */
export function functionArguments(definition: FunctionDefinition, text: string): string {
  const parameters = definition.parameters;
  if (parameters === undefined) return '{}';
  // Function parameters are an object even where the schema does not say so.
  const schema = isSchemaObject(parameters) && parameters.type === undefined ? { ...parameters, type: 'object' } : parameters;
  return JSON.stringify(jsonSchemaInstance(schema, { text }));
}

/** The text, shaped by `response_format`. */
export function formatText(text: string, responseFormat: ResponseFormat | undefined): string {
  if (responseFormat?.type === 'json_schema' && responseFormat.json_schema.schema !== undefined) {
    return JSON.stringify(jsonSchemaInstance(responseFormat.json_schema.schema, { text }));
  }
  if (responseFormat?.type === 'json_schema' || responseFormat?.type === 'json_object') return JSON.stringify({ echo: text });
  return text;
}

export function chatAnswer(request: ChatCompletionRequest): ChatAnswer {
  const toolResults = trailingToolResults(request.messages);
  const userText = lastUserText(request.messages);
  const selection = selectCalls(request, userText, toolResults.length > 0);
  if (selection.kind === 'tool-calls') {
    return {
      kind: 'tool-calls',
      calls: selection.functions.map((definition) => ({ name: definition.name, arguments: functionArguments(definition, userText) })),
    };
  }
  if (selection.kind === 'function-call') {
    return { kind: 'function-call', call: { name: selection.function.name, arguments: functionArguments(selection.function, userText) } };
  }
  const text = toolResults.length > 0 ? quoteToolResults(toolResults) : userText;
  return { kind: 'text', text: formatText(text, request.response_format) };
}
