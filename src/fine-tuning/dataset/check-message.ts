/**
 * Checks one message of a training example on its own (linking tool calls to their answers
 * is check-example.ts's job). Roles are those of OpenAI's fine-tuning input
 * (`FineTuneChatRequestInput`): system, user, assistant, tool and function. `developer` is
 * not among them (OpenAI's fine-tuning schema has no developer message), so it is refused
 * with a hint to use `system`. Per role:
 * - keys: system/user `role, content, name`; assistant `role, content, name, weight,
 *   refusal, tool_calls, function_call`; tool `role, content, tool_call_id`; function
 *   `role, content, name`; anything else is `unrecognized_key` (`weight` elsewhere than on
 *   an assistant message is `invalid_weight`);
 * - content: system and tool a string or text parts; user a string or text/image_url parts;
 *   assistant a non-empty string or text/refusal parts, or null/absent when it calls tools,
 *   a function or carries a refusal; function a string or null;
 * - `weight` 0 or 1; `name` a non-empty string; `function_call` may be null (absent); tool-call items
 *   `{id, type: "function", function: {name, arguments}}` with arguments that parse as JSON.
 */
import type { ExampleProblem } from './dataset-error.js';
import { isRecord } from './check-functions.js';

const ROLE_KEYS: Record<string, ReadonlySet<string>> = {
  system: new Set(['role', 'content', 'name']),
  user: new Set(['role', 'content', 'name']),
  assistant: new Set(['role', 'content', 'name', 'weight', 'refusal', 'tool_calls', 'function_call']),
  tool: new Set(['role', 'content', 'tool_call_id']),
  function: new Set(['role', 'content', 'name']),
};

export const FINE_TUNING_ROLES = Object.keys(ROLE_KEYS);

const IMAGE_URL = /^(https?:\/\/|data:image\/)/;

type Problems = ExampleProblem[];

function checkParts(content: unknown[], where: string, allowed: ReadonlySet<string>, problems: Problems): void {
  if (content.length === 0) problems.push({ code: 'invalid_content', message: `${where}.content must not be an empty array` });
  content.forEach((part, index) => {
    const at = `${where}.content[${index}]`;
    const invalid = (message: string) => problems.push({ code: 'invalid_content', message: `${at}: ${message}` });
    if (!isRecord(part) || typeof part.type !== 'string') return void invalid('must be an object with a type');
    if (!allowed.has(part.type)) return void invalid(`content parts of type '${part.type}' are not allowed here (allowed: ${[...allowed].join(', ')})`);
    if (part.type === 'text' && typeof part.text !== 'string') invalid('text must be a string');
    if (part.type === 'refusal' && typeof part.refusal !== 'string') invalid('refusal must be a string');
    if (part.type === 'image_url') {
      const image = part.image_url;
      if (!isRecord(image) || typeof image.url !== 'string' || !IMAGE_URL.test(image.url)) invalid('image_url.url must be an https URL or a data:image URL');
      else if (image.detail !== undefined && image.detail !== 'auto' && image.detail !== 'low' && image.detail !== 'high') invalid("image_url.detail must be 'auto', 'low' or 'high'");
    }
  });
}

function checkContent(message: Record<string, unknown>, role: string, where: string, problems: Problems): void {
  const { content } = message;
  const invalid = (message: string): void => void problems.push({ code: 'invalid_content', message: `${where}.content ${message}` });
  switch (role) {
    case 'system':
    case 'tool':
      if (typeof content === 'string') return;
      if (Array.isArray(content)) return checkParts(content, where, new Set(['text']), problems);
      return invalid('must be a string or an array of text parts');
    case 'user':
      if (typeof content === 'string') return;
      if (Array.isArray(content)) return checkParts(content, where, new Set(['text', 'image_url']), problems);
      return invalid('must be a string or an array of text and image_url parts');
    case 'function':
      if (typeof content === 'string' || content === null) return;
      return invalid('must be a string or null');
    case 'assistant': {
      const calls = message.tool_calls !== undefined || (message.function_call !== undefined && message.function_call !== null);
      const refusal = typeof message.refusal === 'string' && message.refusal !== '';
      if (content === undefined || content === null || content === '') {
        if (!calls && !refusal) invalid('is required (a non-empty string) unless the message has tool_calls, a function_call or a refusal');
        return;
      }
      if (typeof content === 'string') return;
      if (Array.isArray(content)) return checkParts(content, where, new Set(['text', 'refusal']), problems);
      return invalid('must be a string, an array of text parts, or null');
    }
  }
}

function checkArguments(value: unknown, where: string, problems: Problems): void {
  if (typeof value !== 'string') return void problems.push({ code: 'invalid_tool_call', message: `${where}.arguments must be a string of JSON` });
  try {
    JSON.parse(value);
  } catch {
    problems.push({ code: 'invalid_tool_call', message: `${where}.arguments is not valid JSON` });
  }
}

function checkFunctionCall(value: unknown, where: string, problems: Problems): void {
  if (!isRecord(value)) return void problems.push({ code: 'invalid_tool_call', message: `${where} must be an object with name and arguments` });
  for (const key of Object.keys(value)) {
    if (key !== 'name' && key !== 'arguments') problems.push({ code: 'invalid_tool_call', message: `${where}: unrecognized key '${key}'` });
  }
  if (typeof value.name !== 'string' || value.name === '') problems.push({ code: 'invalid_tool_call', message: `${where}.name must be a non-empty string` });
  checkArguments(value.arguments, where, problems);
}

function checkToolCalls(value: unknown, where: string, problems: Problems): void {
  if (!Array.isArray(value) || value.length === 0) return void problems.push({ code: 'invalid_tool_call', message: `${where} must be a non-empty array` });
  value.forEach((call: unknown, index) => {
    const at = `${where}[${index}]`;
    if (!isRecord(call)) return void problems.push({ code: 'invalid_tool_call', message: `${at} must be an object` });
    for (const key of Object.keys(call)) {
      if (key !== 'id' && key !== 'type' && key !== 'function') problems.push({ code: 'invalid_tool_call', message: `${at}: unrecognized key '${key}'` });
    }
    if (typeof call.id !== 'string' || call.id === '') problems.push({ code: 'invalid_tool_call', message: `${at}.id must be a non-empty string` });
    if (call.type !== 'function') problems.push({ code: 'invalid_tool_call', message: `${at}.type must be 'function'` });
    checkFunctionCall(call.function, `${at}.function`, problems);
  });
}

/** The problems of `messages[index]` on its own; empty when it is well formed. */
export function checkMessage(message: unknown, index: number): Problems {
  const where = `messages[${index}]`;
  const problems: Problems = [];
  if (!isRecord(message)) return [{ code: 'invalid_message', message: `${where} must be an object` }];
  const { role } = message;
  if (typeof role !== 'string') return [{ code: 'invalid_role', message: `${where} has no role` }];
  const keys = ROLE_KEYS[role];
  if (!keys) {
    const hint = role === 'developer' ? " (fine-tuning files take 'system' for instructions)" : '';
    return [{ code: 'invalid_role', message: `${where}.role '${role}' is not one of ${FINE_TUNING_ROLES.join(', ')}${hint}` }];
  }
  for (const key of Object.keys(message)) {
    if (keys.has(key)) continue;
    if (key === 'weight') problems.push({ code: 'invalid_weight', message: `${where}: weight is only allowed on assistant messages` });
    else problems.push({ code: 'unrecognized_key', message: `${where}: unrecognized key '${key}' for a ${role} message` });
  }
  checkContent(message, role, where, problems);
  if (message.name !== undefined || role === 'function') {
    if (typeof message.name !== 'string' || message.name === '') problems.push({ code: 'invalid_name', message: `${where}.name must be a non-empty string` });
  }
  if (role === 'assistant') {
    if (message.weight !== undefined && message.weight !== 0 && message.weight !== 1) {
      problems.push({ code: 'invalid_weight', message: `${where}.weight must be 0 or 1, got ${JSON.stringify(message.weight)}` });
    }
    if (message.refusal !== undefined && message.refusal !== null && typeof message.refusal !== 'string') {
      problems.push({ code: 'invalid_content', message: `${where}.refusal must be a string or null` });
    }
    if (message.tool_calls !== undefined) checkToolCalls(message.tool_calls, `${where}.tool_calls`, problems);
    const functionCall = message.function_call ?? undefined;
    if (functionCall !== undefined) checkFunctionCall(functionCall, `${where}.function_call`, problems);
    if (message.tool_calls !== undefined && functionCall !== undefined) {
      problems.push({ code: 'invalid_tool_call', message: `${where} has both tool_calls and function_call` });
    }
  }
  if (role === 'tool' && (typeof message.tool_call_id !== 'string' || message.tool_call_id === '')) {
    problems.push({ code: 'invalid_tool_message', message: `${where}.tool_call_id must be a non-empty string` });
  }
  return problems;
}
