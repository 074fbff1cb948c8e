/**
 * Email addresses: a dot-atom local part (letters of any script, digits, `._%+-`), `@`, a
 * domain of at least two labels whose last label is alphabetic (2+ letters). Addresses at
 * a bare host (`root@localhost`) and quoted local parts are not reported.
 */
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 1, ahead: 4096 };

const EMAIL =
  /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}_%+-]+(?:\.[\p{L}\p{N}_%+-]+)*@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}{2,24}(?![\p{L}\p{N}-]|\.[\p{L}\p{N}])/gu;

export const emailDetector: Detector = {
  kind: 'email',
  *scan(text) {
    if (!text.includes('@')) return;
    for (const match of scanMatches(text, EMAIL, REACH)) {
      yield null;
      if (match === null) continue;
      const start = match.index;
      yield { kind: 'email', start, end: start + match[0].length, value: match[0], tier: 1 };
    }
  },
};
