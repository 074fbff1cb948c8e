/**
 * Which functions the mock calls. With `tools`: `tool_choice` "required" calls the first
 * tool, a named choice calls that tool, "auto" (the default) calls the tools whose names
 * the last user message mentions (only the first when `parallel_tool_calls` is false),
 * "none" calls nothing. With legacy `functions`: `function_call` works the same way, one
 * function at most. Nothing is called when the conversation ends with tool results, so
 * that an agent loop ends with a text answer. Bad choices are the client's error (400).
 */
import type { ChatCompletionRequest, FunctionDefinition } from '../../openai/chat-completion-request.js';
import { invalidRequest } from '../../errors/gateway-error.js';
import { mentionsName } from './conversation-text.js';

export type CallSelection =
  | { kind: 'none' }
  | { kind: 'tool-calls'; functions: FunctionDefinition[] }
  | { kind: 'function-call'; function: FunctionDefinition };

const none: CallSelection = { kind: 'none' };

function selectToolCalls(request: ChatCompletionRequest, userText: string, endsWithToolResults: boolean): CallSelection {
  const tools = (request.tools ?? []).map((tool) => tool.function);
  const choice = request.tool_choice ?? (tools.length > 0 ? 'auto' : 'none');
  let named: FunctionDefinition | undefined;
  if (typeof choice === 'object') {
    const name = choice.function.name;
    named = tools.find((tool) => tool.name === name);
    if (!named) throw invalidRequest(`Invalid value for 'tool_choice': there is no function named '${name}' in 'tools'.`, 'tool_choice');
  } else if (choice === 'required' && tools.length === 0) {
    throw invalidRequest("Invalid value for 'tool_choice': 'required' needs at least one function in 'tools'.", 'tool_choice');
  }

  if (endsWithToolResults || choice === 'none') return none;
  if (named) return { kind: 'tool-calls', functions: [named] };
  if (choice === 'required') return { kind: 'tool-calls', functions: tools.slice(0, 1) };
  const mentioned = tools.filter((tool) => mentionsName(userText, tool.name));
  if (mentioned.length === 0) return none;
  return { kind: 'tool-calls', functions: request.parallel_tool_calls === false ? mentioned.slice(0, 1) : mentioned };
}

function selectFunctionCall(request: ChatCompletionRequest, userText: string, endsWithToolResults: boolean): CallSelection {
  const functions = request.functions ?? [];
  const choice = request.function_call ?? (functions.length > 0 ? 'auto' : 'none');
  let named: FunctionDefinition | undefined;
  if (typeof choice === 'object') {
    named = functions.find((definition) => definition.name === choice.name);
    if (!named) throw invalidRequest(`Invalid value for 'function_call': there is no function named '${choice.name}' in 'functions'.`, 'function_call');
  }

  if (endsWithToolResults || choice === 'none') return none;
  const selected = named ?? functions.find((definition) => mentionsName(userText, definition.name));
  return selected ? { kind: 'function-call', function: selected } : none;
}

export function selectCalls(request: ChatCompletionRequest, userText: string, endsWithToolResults: boolean): CallSelection {
  const usesLegacyFunctions = request.tools === undefined && request.tool_choice === undefined &&
    (request.functions !== undefined || request.function_call !== undefined);
  return usesLegacyFunctions
    ? selectFunctionCall(request, userText, endsWithToolResults)
    : selectToolCalls(request, userText, endsWithToolResults);
}
