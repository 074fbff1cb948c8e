/**
 * The guardrails that apply to one request: the model's `guardrails` fields over the
 * top-level ones (field by field), plus the deny_input patterns of the caller's key.
 * Patterns are compiled once (case-insensitive) and kept.
 */
import type { GuardrailsConfig, ModelConfig } from '../config/schema.js';
import type { ApiKeySettings } from '../storage/spec.js';

export interface GuardRule {
  pattern: RegExp;
  /** Names the rule in errors and logs, never its match: `deny_input[1] of the model 'x'`. */
  label: string;
}

export interface GuardrailPolicy {
  denyInput: GuardRule[];
  denyOutput: GuardRule[];
  maxInputChars: number | undefined;
  validateJson: boolean;
  guardModel: string | undefined;
  guardInput: boolean;
  guardOutput: boolean;
}

const compiled = new Map<string, RegExp>();
const MAX_COMPILED = 2000;

/** Compiles a pattern (case-insensitive, no global state); null when it is not a valid regular expression. */
export function compileGuardPattern(source: string): RegExp | null {
  let pattern = compiled.get(source);
  if (pattern) return pattern;
  try {
    pattern = new RegExp(source, 'i');
  } catch {
    return null;
  }
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(source, pattern);
  return pattern;
}

export function isValidGuardPattern(source: string): boolean {
  return source.length > 0 && compileGuardPattern(source) !== null;
}

function rules(sources: string[] | undefined, list: string, owner: string): GuardRule[] {
  const result: GuardRule[] = [];
  (sources ?? []).forEach((source, index) => {
    const pattern = compileGuardPattern(source);
    if (pattern) result.push({ pattern, label: `${list}[${index}] of ${owner}` });
  });
  return result;
}

export function resolveGuardrails(
  global: GuardrailsConfig | undefined,
  model: ModelConfig,
  key: ApiKeySettings['guardrails'] | undefined,
): GuardrailPolicy {
  const own = model.guardrails ?? {};
  const pick = <K extends keyof GuardrailsConfig>(name: K): { value: GuardrailsConfig[K]; owner: string } =>
    own[name] !== undefined ? { value: own[name], owner: `the model '${model.name}'` } : { value: global?.[name], owner: 'the config' };
  const denyInput = pick('deny_input');
  const denyOutput = pick('deny_output');
  const guardModel = own.guard_model ?? global?.guard_model;
  return {
    denyInput: [...rules(denyInput.value, 'deny_input', denyInput.owner), ...rules(key?.deny_input, 'deny_input', 'your API key')],
    denyOutput: rules(denyOutput.value, 'deny_output', denyOutput.owner),
    maxInputChars: own.max_input_chars ?? global?.max_input_chars,
    validateJson: own.validate_json_output ?? global?.validate_json_output ?? true,
    guardModel,
    guardInput: guardModel !== undefined && (own.guard_input ?? global?.guard_input ?? true),
    guardOutput: guardModel !== undefined && (own.guard_output ?? global?.guard_output ?? false),
  };
}

/** The first rule matching the text, if any. */
export function firstMatch(rules: GuardRule[], text: string): GuardRule | undefined {
  return rules.find((rule) => rule.pattern.test(text));
}
