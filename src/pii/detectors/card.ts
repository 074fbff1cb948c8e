/**
 * Payment card numbers: runs of digits separated by single spaces or dashes, 13–19 digits
 * in all, passing the Luhn check and starting with a known issuer range (IIN) at a length
 * that issuer uses. The whole digit run must be the number; when it is not (a card number
 * followed by an expiry or a CVC), its longest leading part in a card grouping (4-4-4-4,
 * 4-4-4-4-3, 4-6-5, 4-6-4) is tried.
 */
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 1, ahead: 256 };

const RUN = /(?<![\p{L}\p{N}_.,/+-])\d+(?:[ -]\d+)*(?![\p{L}\p{N}_]|[.,]\d)/gu;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let index = digits.length - 1; index >= 0; index -= 1) {
    let digit = digits.charCodeAt(index) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The issuer (scheme) of a card number by IIN and length, or undefined. */
export function cardIssuer(digits: string): string | undefined {
  const length = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  const p6 = Number(digits.slice(0, 6));
  if (digits[0] === '4' && (length === 16 || length === 19)) return 'visa';
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && length === 16) return 'mastercard';
  if ((p2 === 34 || p2 === 37) && length === 15) return 'amex';
  if ((p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) && length >= 16 && length <= 19)
    return 'discover';
  if (p4 >= 3528 && p4 <= 3589 && length >= 16 && length <= 19) return 'jcb';
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) && length >= 14 && length <= 19) return 'diners';
  if (p2 === 62 && length >= 16 && length <= 19) return 'unionpay';
  if ((p2 === 50 || (p2 >= 56 && p2 <= 69)) && length >= 13 && length <= 19) return 'maestro';
  if (p4 >= 2200 && p4 <= 2204 && length === 16) return 'mir';
  return undefined;
}

export function isCardNumber(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) && cardIssuer(digits) !== undefined;
}

const GROUPINGS = ['4-4-4-4-3', '4-4-4-4', '4-6-5', '4-6-4'].map((grouping) => grouping.split('-').map(Number));

export const cardDetector: Detector = {
  kind: 'card',
  *scan(text) {
    for (const match of scanMatches(text, RUN, REACH)) {
      yield null;
      if (match === null) continue;
      const value = match[0];
      const digits = value.replace(/[ -]/g, '');
      if (digits.length < 13) continue;
      const start = match.index;
      if (digits.length <= 19 && isCardNumber(digits)) {
        yield { kind: 'card', start, end: start + value.length, value, tier: 1, detector: cardIssuer(digits) };
        continue;
      }
      const groups = value.split(/[ -]/);
      for (const grouping of GROUPINGS) {
        if (groups.length <= grouping.length) continue;
        if (!grouping.every((size, index) => groups[index]?.length === size)) continue;
        const head = groups.slice(0, grouping.length);
        const headDigits = head.join('');
        if (!isCardNumber(headDigits)) continue;
        let length = 0;
        for (let index = 0; index < grouping.length; index += 1) length += (grouping[index] ?? 0) + (index > 0 ? 1 : 0);
        yield { kind: 'card', start, end: start + length, value: value.slice(0, length), tier: 1, detector: cardIssuer(headDigits) };
        break;
      }
    }
  },
};
