/** Custom patterns from the configuration: `{ name, regex, kind }`, compiled once per list. */
import type { Candidate, CustomPattern } from '../types.js';

const compiled = new WeakMap<CustomPattern, RegExp>();

export function compileCustomPattern(pattern: CustomPattern): RegExp {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    if (!/^[a-z][a-z0-9_]*$/.test(pattern.kind)) throw new Error(`custom PII pattern "${pattern.name}": kind must match [a-z][a-z0-9_]*`);
    const flags = new Set(['g', 'u', ...(pattern.flags ?? '').split('')]);
    flags.delete('y');
    regex = new RegExp(pattern.regex, [...flags].join(''));
    compiled.set(pattern, regex);
  }
  return regex;
}

/** The matches of the patterns, with a `null` step after each match (see `Detector.scan`). */
export function* scanCustom(text: string, patterns: readonly CustomPattern[]): Generator<Candidate | null> {
  for (const pattern of patterns) {
    for (const match of text.matchAll(compileCustomPattern(pattern))) {
      yield null;
      if (match[0].length === 0) continue;
      const start = match.index;
      yield { kind: pattern.kind, start, end: start + match[0].length, value: match[0], tier: 0, detector: pattern.name };
    }
  }
}

export function findCustom(text: string, patterns: readonly CustomPattern[]): Candidate[] {
  const out: Candidate[] = [];
  for (const step of scanCustom(text, patterns)) if (step !== null) out.push(step);
  return out;
}
