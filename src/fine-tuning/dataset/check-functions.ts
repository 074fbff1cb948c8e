/**
 * Checks an example's function definitions: `tools` (an array of
 * `{type: "function", function: {name, description?, parameters?, strict?}}`), legacy
 * `functions` (an array of `{name, description?, parameters?}`) and `parallel_tool_calls`
 * (a boolean). Names follow OpenAI's rule (1 to 64 of a-z, A-Z, 0-9, _ and -) and are unique
 * within the list. Returns the problems found and the declared names.
 */
import type { ExampleProblem } from './dataset-error.js';

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FUNCTION_KEYS = new Set(['name', 'description', 'parameters', 'strict']);

export interface FunctionsCheck {
  problems: ExampleProblem[];
  /** Names declared in `tools` (undefined when the example has none). */
  toolNames?: Set<string>;
  /** Names declared in `functions` (undefined when the example has none). */
  functionNames?: Set<string>;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkDefinition(value: unknown, where: string, names: Set<string>, problems: ExampleProblem[]): void {
  const invalid = (message: string) => problems.push({ code: 'invalid_tools', message: `${where}: ${message}` });
  if (!isRecord(value)) return void invalid('must be an object');
  for (const key of Object.keys(value)) if (!FUNCTION_KEYS.has(key)) invalid(`unrecognized key '${key}'`);
  const { name, description, parameters, strict } = value;
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) invalid('name must be 1 to 64 characters of a-z, A-Z, 0-9, underscores and dashes');
  else if (names.has(name)) invalid(`the function name '${name}' appears twice`);
  else names.add(name);
  if (description !== undefined && typeof description !== 'string') invalid('description must be a string');
  if (parameters !== undefined && !isRecord(parameters)) invalid('parameters must be a JSON Schema object');
  if (strict !== undefined && strict !== null && typeof strict !== 'boolean') invalid('strict must be a boolean');
}

export function checkFunctions(example: Record<string, unknown>): FunctionsCheck {
  const problems: ExampleProblem[] = [];
  const result: FunctionsCheck = { problems };
  const { tools, functions, parallel_tool_calls: parallel } = example;
  if (tools !== undefined) {
    result.toolNames = new Set();
    if (!Array.isArray(tools)) problems.push({ code: 'invalid_tools', message: 'tools must be an array' });
    else {
      tools.forEach((tool: unknown, index) => {
        const where = `tools[${index}]`;
        if (!isRecord(tool)) return void problems.push({ code: 'invalid_tools', message: `${where}: must be an object` });
        for (const key of Object.keys(tool)) {
          if (key !== 'type' && key !== 'function') problems.push({ code: 'invalid_tools', message: `${where}: unrecognized key '${key}'` });
        }
        if (tool.type !== 'function') problems.push({ code: 'invalid_tools', message: `${where}.type must be 'function'` });
        checkDefinition(tool.function, `${where}.function`, result.toolNames!, problems);
      });
    }
  }
  if (functions !== undefined) {
    result.functionNames = new Set();
    if (!Array.isArray(functions)) problems.push({ code: 'invalid_tools', message: 'functions must be an array' });
    else functions.forEach((definition: unknown, index) => checkDefinition(definition, `functions[${index}]`, result.functionNames!, problems));
  }
  if (parallel !== undefined && typeof parallel !== 'boolean') problems.push({ code: 'invalid_tools', message: 'parallel_tool_calls must be a boolean' });
  return result;
}
