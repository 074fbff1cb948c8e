/**
 * The errors a fine-tuning file can have: a short, stable `code` (documented below, part of
 * Chatgate's API: clients and tests match on it), the 1-based line it is on (null for
 * file-level errors) and a human-readable message naming the offending field.
 */

export const DATASET_ERROR_CODES = {
  /** A blank line before the last example (trailing blank lines are ignored). */
  blank_line: 'blank_line',
  /** The line is not valid UTF-8. */
  invalid_utf8: 'invalid_utf8',
  /** The line does not parse as JSON. */
  invalid_json: 'invalid_json',
  /** The line's JSON value is not an object. */
  not_an_object: 'not_an_object',
  /** No `messages`, or it is not a non-empty array. */
  missing_messages: 'missing_messages',
  /** A message is not an object. */
  invalid_message: 'invalid_message',
  /** A message has no role, or one fine-tuning does not take. */
  invalid_role: 'invalid_role',
  /** A message has a key its role does not take. */
  unrecognized_key: 'unrecognized_key',
  /** A message's content is missing or of the wrong type for its role. */
  invalid_content: 'invalid_content',
  /** A message's `name` is not a non-empty string. */
  invalid_name: 'invalid_name',
  /** `weight` is not 0 or 1, or is on a message that is not the assistant's. */
  invalid_weight: 'invalid_weight',
  /** The example has no assistant message. */
  missing_assistant_message: 'missing_assistant_message',
  /** Every assistant message has weight 0: nothing to train on. */
  no_trained_messages: 'no_trained_messages',
  /** `tools`, `functions` or `parallel_tool_calls` is malformed. */
  invalid_tools: 'invalid_tools',
  /** An assistant `tool_calls` item or `function_call` is malformed, calls an unknown function, or is never answered. */
  invalid_tool_call: 'invalid_tool_call',
  /** A tool (or function) message answers no earlier call. */
  invalid_tool_message: 'invalid_tool_message',
  /** The example's tokens exceed the context window. */
  too_many_tokens: 'too_many_tokens',
  /** The example's tokens cannot be counted (e.g. images for a text-only model). */
  token_count_failed: 'token_count_failed',
  /** File level: fewer usable examples than the minimum. */
  too_few_examples: 'too_few_examples',
} as const;

export type DatasetErrorCode = keyof typeof DATASET_ERROR_CODES;

export interface DatasetError {
  /** 1-based line number; null for an error about the whole file. */
  line: number | null;
  code: DatasetErrorCode;
  message: string;
}

/** A problem of one example, before it is placed on a line. */
export interface ExampleProblem {
  code: DatasetErrorCode;
  message: string;
}

/** Thrown by readExamples (read-examples.ts) on a line that is not a valid example. */
export class DatasetFormatError extends Error {
  readonly line: number;
  readonly code: DatasetErrorCode;

  constructor(line: number, problem: ExampleProblem) {
    super(`line ${line}: ${problem.message}`);
    this.name = 'DatasetFormatError';
    this.line = line;
    this.code = problem.code;
  }
}
