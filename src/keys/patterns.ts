/**
 * Name patterns for models and endpoints: an exact name, or a prefix ending in `*`
 * (`gpt-4*`, `/v1/chat/*`; `*` alone matches everything).
 */

export function patternMatches(pattern: string, value: string): boolean {
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

/** null: no restriction. */
export function anyPatternMatches(patterns: readonly string[] | null, value: string): boolean {
  if (patterns === null) return true;
  return patterns.some((pattern) => patternMatches(pattern, value));
}

/** Whether everything `narrow` matches is matched by `wide` (a pattern within a pattern). */
export function patternWithin(narrow: string, wide: string): boolean {
  if (wide.endsWith('*')) return narrow.startsWith(wide.slice(0, -1));
  return narrow === wide;
}

/** Whether every pattern of `narrow` lies within one of `wide` (null: everything). */
export function patternsWithin(narrow: readonly string[] | null, wide: readonly string[] | null): boolean {
  if (wide === null) return true;
  if (narrow === null) return false;
  return narrow.every((pattern) => wide.some((candidate) => patternWithin(pattern, candidate)));
}

/** A pattern is well-formed: not empty, no whitespace, `*` only at the end. */
export function isValidPattern(pattern: string): boolean {
  return pattern.length > 0 && pattern.length <= 256 && !/\s/.test(pattern) && !pattern.slice(0, -1).includes('*');
}
