/**
 * US social security numbers: `AAA-GG-SSSS` (or spaced `AAA GG SSSS`), same separator
 * twice, area not 000, 666 or 900–999, group not 00, serial not 0000. Nine bare digits are
 * reported only right after an SSN cue (`SSN`, `social security`, `SSA`), since order
 * numbers and the like are nine-digit runs too.
 */
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 1, ahead: 32 };

const SSN = /(?<![\p{L}\p{N}.\-/])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\p{L}\p{N}]|[-/.]\d)/gu;
const CUE = /(?:\bssn|social\s+security(?:\s+(?:number|no\.?|#))?|\bssa|\bSSN#?)\s*(?:#|no\.?|number)?\s*[:=]?\s*$/i;

export function validSsnParts(area: string, group: string, serial: string): boolean {
  const areaNumber = Number(area);
  return areaNumber !== 0 && areaNumber !== 666 && areaNumber < 900 && group !== '00' && serial !== '0000';
}

export const ssnDetector: Detector = {
  kind: 'ssn',
  *scan(text) {
    for (const match of scanMatches(text, SSN, REACH)) {
      yield null;
      if (match === null) continue;
      const [value, area, separator, group, serial] = match as unknown as [string, string, string, string, string];
      if (!validSsnParts(area, group, serial)) continue;
      const start = match.index;
      if (separator === '' && !CUE.test(text.slice(Math.max(0, start - 40), start))) continue;
      yield { kind: 'ssn', start, end: start + value.length, value, tier: 1 };
    }
  },
};
