/**
 * `response_format` for the llama-cpp provider: a grammar constrains the sampling
 * (`json_object`: the library's JSON grammar; `json_schema`: a grammar built from the
 * schema, cached per model), and the finished text is validated, because the grammar has
 * gaps (numbers ignore minimum/maximum, some formats are free strings). An answer cut by
 * max_tokens is returned as is with finish `length` (like OpenAI); a complete answer that is
 * not valid JSON for the format gets `invalidModelOutput` (500) from the caller, after one
 * retry when not streamed.
 */
import type { GbnfJsonSchema, LlamaGrammar, LlamaModel } from 'node-llama-cpp';
import { GatewayError, invalidRequest } from '../../errors/gateway-error.js';
import type { ChatCompletionRequest } from '../../openai/chat-completion-request.js';
import { matchesSchema } from '../mock/json-schema-check.js';
import type { JsonSchema } from '../mock/json-schema-ref.js';
import { SCHEMA_PARAM, toGrammarSchema } from './json-schema-grammar.js';

/** Completion tokens of a structured answer when neither the client nor the config sets a limit. */
export const STRUCTURED_DEFAULT_MAX_TOKENS = 1024;
/** Schema grammars kept per loaded model (least recently used dropped first). */
export const GRAMMAR_CACHE_SIZE = 32;

export type OutputFormat =
  | { kind: 'json_object' }
  | { kind: 'json_schema'; schema: JsonSchema; grammarSchema: GbnfJsonSchema; key: string };

/** What the request asks for; throws a 400 for a schema the grammar cannot express. Call before taking a sequence. */
export function outputFormatOf(request: ChatCompletionRequest): OutputFormat | undefined {
  const format = request.response_format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { kind: 'json_object' };
  const schema = format.json_schema.schema;
  if (schema === undefined) return { kind: 'json_object' };
  const grammarSchema = toGrammarSchema(schema);
  return { kind: 'json_schema', schema: schema as JsonSchema, grammarSchema, key: JSON.stringify(grammarSchema) };
}

const grammars = new WeakMap<LlamaModel, Map<string, Promise<LlamaGrammar>>>();

/** The grammar for the format on this model (created once per schema, bounded cache). */
export function grammarFor(model: LlamaModel, format: OutputFormat): Promise<LlamaGrammar> {
  let cache = grammars.get(model);
  if (!cache) grammars.set(model, (cache = new Map()));
  const key = format.kind === 'json_object' ? 'json' : format.key;
  const cached = cache.get(key);
  if (cached) {
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const created =
    format.kind === 'json_object'
      ? model.llama.getGrammarFor('json')
      : model.llama.createGrammarForJsonSchema(format.grammarSchema as never).then(
          (grammar) => withPlainIntegers(model, grammar),
          (error: unknown) => {
            throw invalidRequest(`Invalid schema for response_format: the grammar could not be built (${error instanceof Error ? error.message : String(error)}).`, SCHEMA_PARAM);
          },
        );
  cache.set(key, created);
  created.catch(() => cache.delete(key));
  while (cache.size > GRAMMAR_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return created;
}

/** The generator's integer rule, which also allows an exponent (`1e5`). */
const INTEGER_RULE = /^integer-number-rule ::= .*$/m;
const PLAIN_INTEGER_RULE = 'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15})';

/**
 * The grammar with integers written as plain digits: the generator's integer rule allows an
 * exponent, and `1e5`, while a valid JSON Schema integer, is a float to many JSON parsers.
 */
async function withPlainIntegers(model: LlamaModel, grammar: LlamaGrammar): Promise<LlamaGrammar> {
  if (!INTEGER_RULE.test(grammar.grammar)) return grammar;
  return model.llama.createGrammar({
    grammar: grammar.grammar.replace(INTEGER_RULE, PLAIN_INTEGER_RULE),
    stopGenerationTriggers: grammar.stopGenerationTriggers,
    trimWhitespaceSuffix: grammar.trimWhitespaceSuffix,
  });
}

/** Why the finished text does not fit the format, or undefined when it does. */
export function outputProblem(format: OutputFormat, text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'the output is not valid JSON';
  }
  if (format.kind === 'json_object') {
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'the output is not a JSON object';
  }
  return matchesSchema(value, format.schema) ? undefined : 'the output does not match the JSON schema';
}

export function invalidModelOutput(modelName: string, problem: string): GatewayError {
  return new GatewayError({
    status: 500,
    type: 'server_error',
    code: 'invalid_model_output',
    message: `The model '${modelName}' produced output that does not fit the requested schema: ${problem}. The grammar could not enforce every constraint of the schema; retrying may help.`,
  });
}
