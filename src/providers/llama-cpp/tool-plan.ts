/**
 * What a chat request asks of function calling, normalized for the llama-cpp provider:
 * `tools` + `tool_choice` + `parallel_tool_calls`, or the legacy `functions` +
 * `function_call`. Each function's JSON schema is translated to a grammar schema up front
 * (a 400 naming `tools[i].function.parameters` when the grammar cannot express it), and the
 * finished arguments are checked against the original schema (`argumentsProblem`), because
 * the grammar does not enforce every keyword (numeric bounds, some formats).
 */
import type { ChatModelFunctions, GbnfJsonSchema } from 'node-llama-cpp';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { invalidRequest } from '../../errors/gateway-error.js';
import { matchesSchema } from '../mock/json-schema-check.js';
import type { JsonSchema } from '../mock/json-schema-ref.js';
import { hasExponentInteger, mentionsIntegers } from './integer-notation.js';
import { toGrammarSchema } from './json-schema-grammar.js';

export interface PlannedFunction {
  name: string;
  description?: string;
  /** The client's schema (validation); `{type: object}` with no properties when it gave none. */
  schema: JsonSchema;
  /** The grammar generator's schema, and its cache key. */
  grammarSchema: GbnfJsonSchema;
  grammarKey: string;
}

export type ToolMode =
  /** The model may answer with text or call functions. */
  | { kind: 'auto' }
  /** The model must call a function (any of them). */
  | { kind: 'required' }
  /** The model must call this function. */
  | { kind: 'named'; name: string };

export interface ToolPlan {
  functions: PlannedFunction[];
  mode: ToolMode;
  /** Legacy `functions`: at most one call, answered as `function_call`. */
  legacy: boolean;
  /** More than one call in a turn (`parallel_tool_calls`, default true; never for legacy functions). */
  parallel: boolean;
}

const emptyParameters = { type: 'object', properties: {}, additionalProperties: false };

function planFunction(definition: { name: string; description?: string | undefined; parameters?: Record<string, unknown> | undefined }, param: string): PlannedFunction {
  const schema = definition.parameters ?? emptyParameters;
  const grammarSchema = toGrammarSchema(schema, param, `the parameters of function '${definition.name}'`);
  return {
    name: definition.name,
    ...(definition.description ? { description: definition.description } : {}),
    schema: schema as JsonSchema,
    grammarSchema,
    grammarKey: JSON.stringify(grammarSchema),
  };
}

function checkUniqueNames(functions: PlannedFunction[], param: string): void {
  const seen = new Set<string>();
  functions.forEach((definition, index) => {
    if (seen.has(definition.name)) throw invalidRequest(`Invalid value: the function name '${definition.name}' appears twice.`, `${param}[${index}]`);
    seen.add(definition.name);
  });
}

/** The request's function calling, or undefined when the model must answer with text only. */
export function toolPlanOf(request: ChatCompletionRequest): ToolPlan | undefined {
  if (request.tools !== undefined || request.tool_choice !== undefined) {
    const tools = request.tools ?? [];
    const choice = request.tool_choice ?? (tools.length > 0 ? 'auto' : 'none');
    if (tools.length === 0 || choice === 'none') return undefined;
    const functions = tools.map((tool, index) => planFunction(tool.function, `tools[${index}].function.parameters`));
    checkUniqueNames(functions, 'tools');
    const mode: ToolMode = typeof choice === 'object' ? { kind: 'named', name: choice.function.name } : { kind: choice };
    return { functions, mode, legacy: false, parallel: request.parallel_tool_calls !== false };
  }
  const definitions = request.functions ?? [];
  const choice = request.function_call ?? (definitions.length > 0 ? 'auto' : 'none');
  if (definitions.length === 0 || choice === 'none') return undefined;
  const functions = definitions.map((definition, index) => planFunction(definition, `functions[${index}].parameters`));
  checkUniqueNames(functions, 'functions');
  const mode: ToolMode = typeof choice === 'object' ? { kind: 'named', name: choice.name } : { kind: 'auto' };
  return { functions, mode, legacy: true, parallel: false };
}

/** The functions as node-llama-cpp's chat wrappers document them in the prompt. */
export function libraryFunctions(functions: PlannedFunction[]): ChatModelFunctions {
  const result: Record<string, { description?: string; params: GbnfJsonSchema }> = {};
  for (const definition of functions) {
    result[definition.name] = { ...(definition.description ? { description: definition.description } : {}), params: definition.grammarSchema };
  }
  return result as ChatModelFunctions;
}

/** Why the arguments text is not a valid call of the function, or undefined when it is. */
export function argumentsProblem(definition: PlannedFunction, argumentsText: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(argumentsText);
  } catch {
    return `the arguments of '${definition.name}' are not valid JSON`;
  }
  if (!matchesSchema(value, definition.schema)) return `the arguments of '${definition.name}' do not match its parameters schema`;
  if (mentionsIntegers(definition.schema) && hasExponentInteger(argumentsText)) return `the arguments of '${definition.name}' write an integer with an exponent`;
  return undefined;
}
