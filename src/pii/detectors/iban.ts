/**
 * IBANs: a registered country code, two check digits, then exactly that country's length
 * of letters and digits, written together or in groups separated by single spaces (or
 * dashes); the mod-97 checksum must be 1. Upper case only (IBANs are printed in capitals).
 */
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 1, ahead: 8 };

/** Total IBAN length by country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18,
  FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24,
  ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29,
  PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23,
  ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

const START = /(?<![\p{L}\p{N}])([A-Z]{2})(\d{2})/gu;

export function ibanChecksumValid(compact: string): boolean {
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

export function isIban(text: string): boolean {
  const compact = text.replace(/[ -]/g, '');
  const length = IBAN_LENGTHS[compact.slice(0, 2)];
  return length !== undefined && compact.length === length && /^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(compact) && ibanChecksumValid(compact);
}

const isAlnum = (char: string | undefined): boolean => char !== undefined && /[A-Z0-9]/.test(char);

export const ibanDetector: Detector = {
  kind: 'iban',
  *scan(text) {
    for (const match of scanMatches(text, START, REACH)) {
      yield null;
      if (match === null) continue;
      const country = match[1] ?? '';
      const length = IBAN_LENGTHS[country];
      if (length === undefined) continue;
      const start = match.index;
      let position = start + 4;
      let compact = match[0];
      while (compact.length < length && position < text.length) {
        const char = text[position];
        if (isAlnum(char)) {
          compact += char;
          position += 1;
        } else if ((char === ' ' || char === '-') && isAlnum(text[position + 1])) {
          position += 1;
        } else break;
      }
      if (compact.length !== length) continue;
      // The number must end at a boundary (not in the middle of a longer token).
      if (/[\p{L}\p{N}]/u.test(text[position] ?? '')) continue;
      if (!ibanChecksumValid(compact)) continue;
      yield { kind: 'iban', start, end: position, value: text.slice(start, position), tier: 1 };
    }
  },
};
