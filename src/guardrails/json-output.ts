/**
 * Checks answers to `response_format: json_schema` against the requested schema (the mock's
 * validator, json-schema-check.ts), and says what failed without quoting the answer.
 */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { ChatResult } from '../providers/spec.js';
import { matchesSchema } from '../providers/mock/json-schema-check.js';
import { isSchemaObject, type JsonSchema } from '../providers/mock/json-schema-ref.js';

/** The schema a chat request asks its answer to follow, if any. */
export function requestedSchema(request: ChatCompletionRequest): { name: string; schema: JsonSchema } | undefined {
  const format = request.response_format;
  if (format?.type !== 'json_schema' || format.json_schema.schema === undefined) return undefined;
  return { name: format.json_schema.name, schema: format.json_schema.schema as JsonSchema };
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Why `value` does not match `schema`: the first top-level property at fault when there is one. */
function mismatch(value: unknown, schema: JsonSchema): string {
  if (isSchemaObject(schema)) {
    const type = schema.type;
    if (typeof type === 'string' && !matchesSchema(value, { type }, schema)) return `expected a JSON ${type}, got ${typeName(value)}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const record = value as Record<string, unknown>;
      const required = Array.isArray(schema.required) ? schema.required.filter((name): name is string => typeof name === 'string') : [];
      const missing = required.find((name) => !(name in record));
      if (missing !== undefined) return `the required property '${missing}' is missing`;
      const properties = isSchemaObject(schema.properties) ? (schema.properties as Record<string, JsonSchema>) : {};
      for (const [name, propertySchema] of Object.entries(properties)) {
        if (name in record && !matchesSchema(record[name], propertySchema, schema)) return `the property '${name}' does not match its schema`;
      }
      if (schema.additionalProperties === false) {
        const extra = Object.keys(record).find((name) => !(name in properties));
        if (extra !== undefined) return `the property '${extra.slice(0, 64)}' is not allowed`;
      }
    }
  }
  return 'it does not match the schema';
}

/** What is wrong with one answer text, or undefined when it is a valid instance. */
export function jsonAnswerProblem(text: string, schema: JsonSchema): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'the answer is not valid JSON';
  }
  if (matchesSchema(value, schema)) return undefined;
  return mismatch(value, schema);
}

/**
 * The first problem among the result's choices that finished normally (`stop`): a choice cut
 * by `length` is the client's limit, and tool calls are not the answer's content.
 */
export function chatResultProblem(result: ChatResult, schema: JsonSchema): string | undefined {
  for (const choice of result.choices) {
    if (choice.finishReason !== 'stop' || typeof choice.message.content !== 'string') continue;
    const problem = jsonAnswerProblem(choice.message.content, schema);
    if (problem) return `choice ${choice.index}: ${problem}`;
  }
  return undefined;
}
