/**
 * Phone numbers. Candidates come from a permissive pattern (an optional `+` or `00`, then
 * digits with spaces, dots, dashes, slashes and parentheses between them, 7–15 digits in
 * all) and are kept only when libphonenumber-js (full metadata) says the number is valid:
 * - international (`+33 6 12 34 56 78`, `0049 30 1234567`): valid for its calling code;
 * - national: valid in one of the configured regions (default US, GB, FR, DE, ES); for
 *   regions whose national format starts with a trunk prefix (0 in GB, FR, DE…), the
 *   candidate must start with it — this keeps dates and codes out of Germany's permissive
 *   plan.
 * Rejected outright: ISO dates and date-like runs (`2024-01-15`, `15.03.2024`, `15/03/2024`),
 * dotted runs that look like versions (`1.2.3`), candidates glued to letters, `#`, `/` or
 * `:` (order numbers, SKUs, times), and — without a phone cue word nearby (`tel`, `phone`,
 * `call`, `mobile`, `Telefon`, `téléphone`, `teléfono`, `móvil`, `portable`, `Handy`,
 * `WhatsApp`, `fax`…) — national numbers written as one bare digit run, which are more
 * often order, invoice or account numbers than phones; candidates right after a reference
 * word (`SKU`, `Artikel`, `part number`, `order`, `invoice`, `Rechnung`, `commande`,
 * `pedido`, `expediente`, `ref`, `#`…) and `…/2022`-style file numbers are rejected too.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 1, ahead: 128 };

export const DEFAULT_PHONE_REGIONS: readonly CountryCode[] = ['US', 'GB', 'FR', 'DE', 'ES'];

const CANDIDATE =
  /(?<![\p{L}\p{N}_#/:.,+\-@])(?:\+|00(?=[1-9]))?(?:\(\d{1,5}\)[ .\-/]?|\d)(?:[ .\-/]?(?:\(\d{1,5}\)|\d)){5,18}(?![\p{L}\p{N}_@]|[.,:/\-]\d)/gu;
const CUE =
  /(?:tel|phone|call|mobile|mobil|cell|fax|contact|ring|text|sms|whatsapp|telefon|téléphone|telephone|teléfono|telefono|móvil|movil|portable|handy|rufnummer|numéro|número|llama|appel|appelez|anrufen|joindre|erreichbar|n°|nº)\b[^\n]{0,24}$/iu;
const DATE_LIKE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:[ T]\d{1,2})?$/;
const VERSION_LIKE = /^\d{1,3}(?:\.\d{1,3}){2,3}$/;
/** Reference cue words right before a candidate: article, order, invoice, file numbers. */
const NOT_PHONE_CUE =
  /(?:\b(?:sku|art(?:ikel|icle|ículo)?|art\.-nr\.?|part(?:\s+number)?|item|ref(?:erence|erencia|érence)?|order|invoice|rechnung|auftrag|bestell\w*|commande|facture|pedido|expediente|ticket|lot|serial|seriennummer|isbn|replaces|ersetzt|remplace|reemplaza)\b[^\n\d]{0,12}|#\s*)$/iu;
const YEAR_SUFFIXED = /\/(?:19|20)\d{2}$/;
/** A year then a separator: references such as `2024/118823` or `2024-0042-17`. */
const YEAR_PREFIXED = /^(?:19|20)\d{2}[/\-.]/;

function digitCount(text: string): number {
  let count = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code >= 48 && code <= 57) count += 1;
  }
  return count;
}

export function validatePhone(candidate: string, regions: readonly CountryCode[]): string | undefined {
  const compact = candidate.replace(/[\s.\-/()]/g, '');
  if (candidate.startsWith('+') || compact.startsWith('00')) {
    const international = compact.startsWith('00') ? `+${compact.slice(2)}` : compact;
    const phone = parsePhoneNumberFromString(international);
    return phone?.isValid() ? phone.country ?? 'intl' : undefined;
  }
  for (const region of regions) {
    const phone = parsePhoneNumberFromString(compact, region);
    if (!phone?.isValid() || phone.country !== region) continue;
    const national = phone.formatNational().replace(/^\(/, '');
    if (national.startsWith('0') && !compact.startsWith('0')) continue;
    if (phone.nationalNumber.length + (national.startsWith('0') ? 1 : 0) !== compact.length) continue;
    return region;
  }
  return undefined;
}

/**
 * Validates the candidate, or, when it is not a number, the candidate without up to two
 * space-separated groups at either end ("room 12 06 12 34 56 78", "020 7946 0958 2 times").
 * Returns [offset, length, region] of the longest valid part.
 */
function validateWithTrim(value: string, regions: readonly CountryCode[]): [number, number, string] | undefined {
  const whole = validatePhone(value, regions);
  if (whole !== undefined) return [0, value.length, whole];
  const cuts: number[] = [0];
  for (let index = 0; index < value.length; index += 1) if (value[index] === ' ') cuts.push(index);
  if (cuts.length < 2) return undefined;
  const spaces = cuts.slice(1);
  const options: Array<[number, number]> = [];
  for (let head = 0; head <= Math.min(2, spaces.length); head += 1) {
    for (let tail = 0; tail <= Math.min(2, spaces.length - head); tail += 1) {
      if (head === 0 && tail === 0) continue;
      const from = head === 0 ? 0 : (spaces[head - 1] ?? 0) + 1;
      const to = tail === 0 ? value.length : (spaces[spaces.length - tail] ?? value.length);
      if (to - from >= 7) options.push([from, to]);
    }
  }
  options.sort((a, b) => b[1] - b[0] - (a[1] - a[0]));
  for (const [from, to] of options) {
    const part = value.slice(from, to);
    if (digitCount(part) < 7 || DATE_LIKE.test(part)) continue;
    const region = validatePhone(part, regions);
    if (region !== undefined) return [from, to - from, region];
  }
  return undefined;
}

export const phoneDetector: Detector = {
  kind: 'phone',
  *scan(text, options) {
    const regions = options.phoneRegions ?? DEFAULT_PHONE_REGIONS;
    for (const match of scanMatches(text, CANDIDATE, REACH)) {
      yield null;
      if (match === null) continue;
      let value = match[0];
      const start = match.index;
      // A trailing separator is not part of the number.
      value = value.replace(/[ .\-/]+$/, '');
      const digits = digitCount(value);
      if (digits < 7 || digits > 15) continue;
      if (DATE_LIKE.test(value) || VERSION_LIKE.test(value) || YEAR_PREFIXED.test(value) || YEAR_SUFFIXED.test(value)) continue;
      if (/^\d{3}-\d{2}-\d{4}$/.test(value)) continue; // the SSN shape, valid or not
      if (NOT_PHONE_CUE.test(text.slice(Math.max(0, start - 30), start))) continue;
      const international = value.startsWith('+') || value.startsWith('00');
      if (!international && /^\d+$/.test(value) && !CUE.test(text.slice(Math.max(0, start - 40), start))) continue;
      // Unbalanced parentheses mean the match is not one number.
      if ((value.match(/\(/g)?.length ?? 0) !== (value.match(/\)/g)?.length ?? 0)) continue;
      const found = validateWithTrim(value, regions);
      if (found === undefined) continue;
      const [offset, length, region] = found;
      yield { kind: 'phone', start: start + offset, end: start + offset + length, value: value.slice(offset, offset + length), tier: 2, detector: region };
    }
  },
};
