/**
 * Turns a failed zod parse into a 400 in OpenAI's style, with `param` naming the offending
 * field (`messages[0].content`) and a message that says what was expected.
 */
import type { z } from 'zod';
import { GatewayError, invalidRequest, missingParameter } from './gateway-error.js';

export function formatParam(path: ReadonlyArray<PropertyKey>): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text ? `.${String(segment)}` : String(segment);
  }
  return text;
}

type Issue = z.core.$ZodIssue;

/** The most specific issue: the one reaching deepest into the request. */
function deepestIssue(issue: Issue, prefix: PropertyKey[]): { issue: Issue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let best: { issue: Issue; path: PropertyKey[] } | null = null;
    for (const branch of issue.errors) {
      for (const nested of branch) {
        const candidate = deepestIssue(nested, path);
        if (!best || candidate.path.length > best.path.length) best = candidate;
      }
    }
    if (best && best.path.length > path.length) return best;
  }
  return { issue, path };
}

function quoteList(values: ReadonlyArray<unknown>): string {
  return values.map((value) => `'${String(value)}'`).join(', ');
}

export function issueToError(rootIssue: Issue): GatewayError {
  const { issue, path } = deepestIssue(rootIssue, []);
  const param = formatParam(path);
  switch (issue.code) {
    case 'invalid_type':
      if (/received undefined$/.test(issue.message)) return missingParameter(param);
      return invalidRequest(
        `Invalid type for '${param}': expected ${issue.expected === 'int' ? 'an integer' : `a value of type ${issue.expected}`}, but got ${issue.message.replace(/^.*received /, '')} instead.`,
        param,
        'invalid_type',
      );
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator && 'options' in issue && Array.isArray(issue.options)) {
        return invalidRequest(`Invalid value for '${param}': expected one of ${quoteList(issue.options)}.`, param, 'invalid_value');
      }
      return invalidRequest(`Invalid value for '${param}'.`, param, 'invalid_value');
    case 'invalid_value':
      return invalidRequest(`Invalid value for '${param}': expected one of ${quoteList(issue.values)}.`, param, 'invalid_value');
    case 'too_big':
      if (issue.origin === 'array') return invalidRequest(`Invalid '${param}': array too long. Expected an array with maximum length ${String(issue.maximum)}.`, param, 'array_above_max_length');
      if (issue.origin === 'string') return invalidRequest(`Invalid '${param}': string too long. Expected a string with maximum length ${String(issue.maximum)}.`, param, 'string_above_max_length');
      return invalidRequest(`Invalid '${param}': expected a value <= ${String(issue.maximum)}.`, param, 'value_above_maximum');
    case 'too_small':
      if (issue.origin === 'array') return invalidRequest(`Invalid '${param}': empty array. Expected an array with minimum length ${String(issue.minimum)}.`, param, 'array_below_min_length');
      if (issue.origin === 'string') return invalidRequest(`Invalid '${param}': string too short. Expected a string with minimum length ${String(issue.minimum)}.`, param, 'string_below_min_length');
      return invalidRequest(`Invalid '${param}': expected a value >= ${String(issue.minimum)}.`, param, 'value_below_minimum');
    default:
      return invalidRequest(`Invalid '${param}': ${issue.message}.`, param, 'invalid_value');
  }
}

export function parseWith<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw issueToError(result.error.issues[0]!);
}
