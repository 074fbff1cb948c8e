/**
 * Checks one parsed line of a fine-tuning file as a whole example: a JSON object with a
 * non-empty `messages` array (each message checked by check-message.ts), well-formed
 * `tools`/`functions` (check-functions.ts), at least one assistant message and at least one
 * with weight 1, and function calling that hangs together:
 * - a tool call names a function of `tools` (when the example has `tools`), a legacy
 *   function_call one of `functions` (when it has `functions`); call ids are unique;
 * - with `parallel_tool_calls: false`, an assistant message makes at most one call;
 * - a tool message answers an earlier, not yet answered call (`tool_call_id`); a function
 *   message an earlier function_call of that name;
 * - the calls of an assistant message that is not the last one are all answered before the
 *   next user, system or assistant message (the last assistant message may end the example
 *   on its calls: that teaches the model to call).
 * Unknown top-level keys are ignored (tooling often adds ids or metadata there).
 */
import type { ExampleProblem } from './dataset-error.js';
import { checkFunctions, isRecord } from './check-functions.js';
import { checkMessage } from './check-message.js';
import type { TrainingExample } from './example-types.js';

export type ExampleCheck = { ok: true; example: TrainingExample } | { ok: false; problems: ExampleProblem[] };

interface PendingCalls {
  /** Index of the assistant message that made the calls. */
  index: number;
  ids: Set<string>;
  functionName?: string;
}

function checkCalls(messages: Array<Record<string, unknown>>, toolNames: Set<string> | undefined, functionNames: Set<string> | undefined, parallel: boolean, problems: ExampleProblem[]): void {
  const called = new Set<string>();
  const answered = new Set<string>();
  const calledFunctions = new Set<string>();
  let pending: PendingCalls | undefined;
  const lastAssistant = messages.findLastIndex((message) => message.role === 'assistant');
  const flushPending = () => {
    if (pending && pending.ids.size > 0) {
      const ids = [...pending.ids].map((id) => `'${id}'`).join(', ');
      problems.push({ code: 'invalid_tool_call', message: `messages[${pending.index}].tool_calls: ${ids} ${pending.ids.size === 1 ? 'is' : 'are'} not answered by a tool message` });
    }
    pending = undefined;
  };
  messages.forEach((message, index) => {
    const where = `messages[${index}]`;
    if (message.role === 'tool') {
      const id = message.tool_call_id as string;
      if (!called.has(id)) problems.push({ code: 'invalid_tool_message', message: `${where}.tool_call_id '${id}' does not match an earlier tool call` });
      else if (answered.has(id)) problems.push({ code: 'invalid_tool_message', message: `${where}.tool_call_id '${id}' was already answered` });
      answered.add(id);
      pending?.ids.delete(id);
      return;
    }
    if (message.role === 'function') {
      const name = message.name as string;
      if (!calledFunctions.has(name)) problems.push({ code: 'invalid_tool_message', message: `${where}: no earlier function_call of '${name}'` });
      return;
    }
    flushPending();
    if (message.role !== 'assistant') return;
    const toolCalls = (message.tool_calls ?? []) as Array<{ id: string; function: { name: string } }>;
    if (!parallel && toolCalls.length > 1) problems.push({ code: 'invalid_tool_call', message: `${where} makes ${toolCalls.length} tool calls, but parallel_tool_calls is false` });
    const ids = new Set<string>();
    toolCalls.forEach((call, callIndex) => {
      if (called.has(call.id)) problems.push({ code: 'invalid_tool_call', message: `${where}.tool_calls[${callIndex}].id '${call.id}' is used twice` });
      if (toolNames && !toolNames.has(call.function.name)) {
        problems.push({ code: 'invalid_tool_call', message: `${where}.tool_calls[${callIndex}] calls '${call.function.name}', which is not in tools` });
      }
      called.add(call.id);
      ids.add(call.id);
    });
    const functionCall = message.function_call as { name: string } | null | undefined;
    if (functionCall) {
      if (functionNames && !functionNames.has(functionCall.name)) problems.push({ code: 'invalid_tool_call', message: `${where}.function_call calls '${functionCall.name}', which is not in functions` });
      calledFunctions.add(functionCall.name);
    }
    if (index !== lastAssistant) pending = { index, ids };
  });
  flushPending();
}

export function checkExample(value: unknown): ExampleCheck {
  if (!isRecord(value)) return { ok: false, problems: [{ code: 'not_an_object', message: `the line must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}` }] };
  const { messages } = value;
  if (!Array.isArray(messages) || messages.length === 0) {
    return { ok: false, problems: [{ code: 'missing_messages', message: messages === undefined ? "the example has no 'messages'" : "'messages' must be a non-empty array" }] };
  }
  const functions = checkFunctions(value);
  const problems = [...functions.problems];
  messages.forEach((message: unknown, index) => problems.push(...checkMessage(message, index)));
  if (problems.length > 0) return { ok: false, problems };
  const records = messages as Array<Record<string, unknown>>;
  const assistants = records.filter((message) => message.role === 'assistant');
  if (assistants.length === 0) problems.push({ code: 'missing_assistant_message', message: 'the example has no assistant message' });
  else if (assistants.every((message) => message.weight === 0)) problems.push({ code: 'no_trained_messages', message: 'every assistant message has weight 0: nothing to train on' });
  checkCalls(records, functions.toolNames, functions.functionNames, value.parallel_tool_calls !== false, problems);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, example: value as unknown as TrainingExample };
}

/** Parses and checks one non-blank line. */
export function parseExampleLine(text: string): ExampleCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, problems: [{ code: 'invalid_json', message: `the line is not valid JSON (${(error as Error).message})` }] };
  }
  return checkExample(value);
}
