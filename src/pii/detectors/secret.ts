/**
 * Secrets and API keys: well-known formats, plus a Shannon-entropy check for other long
 * random tokens.
 *
 * Formats: PEM private key blocks; JWTs (`eyJ….eyJ….…`); Chatgate keys (`sk-cg-` + 48
 * base62) and tokens (`cgt_…`); OpenAI (`sk-…`, `sk-proj-…`, `sk-svcacct-…`); Anthropic
 * (`sk-ant-…`); AWS access key ids (`AKIA`/`ASIA` + 16); GitHub (`ghp_`, `gho_`, `ghu_`,
 * `ghs_`, `ghr_` + 36, `github_pat_…`); Slack (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`,
 * `xoxs-`, and hooks.slack.com webhook URLs); Google API keys (`AIza` + 35); Stripe secret
 * and restricted keys (`sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`); `Bearer` tokens
 * in Authorization headers.
 *
 * Entropy: a token of 24–256 characters from the base64/base64url alphabet holding upper-case
 * letters, lower-case letters and digits (so hex digests, UUIDs and words are left alone),
 * with at least 4.0 bits of Shannon entropy per character (3.6 after a secret-ish key word
 * such as `secret=`, `password:`, `token`). Tokens after `base64,` (data URLs) are skipped.
 */
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 256, ahead: 1024 };

const FORMATS: ReadonlyArray<[string, RegExp]> = [
  ['pem', /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g],
  ['jwt', /(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![\w-])/g],
  ['chatgate', /(?<![\w-])(?:sk-cg-[0-9A-Za-z]{48}|cgt_[A-Za-z0-9_.-]{20,})(?![\w-])/g],
  ['anthropic', /(?<![\w-])sk-ant-[A-Za-z0-9_-]{32,}(?![\w-])/g],
  ['openai', /(?<![\w-])sk-(?!cg-|ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}(?![\w-])/g],
  ['aws', /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}(?![A-Za-z0-9])/g],
  ['github', /(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?![\w])/g],
  ['slack', /(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,250}(?![\w-])|https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]{20,}/g],
  ['google', /(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])/g],
  ['stripe', /(?<![\w])(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}(?![\w])/g],
  ['bearer', /(?<=\bBearer\s+)[A-Za-z0-9._~+/=-]{20,}(?![\w.~+/=-])/g],
];

const TOKEN = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,256}={0,2}(?![A-Za-z0-9+/_=-])/g;
const KEYWORD = /(?:secret|passw(?:or)?d|pwd|token|api[_-]?key|apikey|credential|private[_-]?key|auth|access[_-]?key|signature|mot de passe|passwort|contraseña|clave)["']?\s*[:=]?\s*["']?$/i;

export function shannonEntropy(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

export function looksRandom(token: string, threshold = 4.0): boolean {
  if (!/[a-z]/.test(token) || !/[A-Z]/.test(token) || !/\d/.test(token)) return false;
  // Paths and identifiers: mostly letters in long words are not keys.
  if (/^[A-Za-z]+(?:[/_-][A-Za-z]+)+$/.test(token)) return false;
  return shannonEntropy(token) >= threshold;
}

export const secretDetector: Detector = {
  kind: 'secret',
  *scan(text, options) {
    for (const [name, pattern] of FORMATS) {
      // A PEM block spans lines without bound: searched whole (its literal start is found fast).
      for (const match of name === 'pem' ? text.matchAll(pattern) : scanMatches(text, pattern, REACH)) {
        yield null;
        if (match === null) continue;
        const start = match.index;
        yield { kind: 'secret', start, end: start + match[0].length, value: match[0], tier: 0, detector: name };
      }
      yield null;
    }
    if (options.entropy !== false) {
      for (const match of scanMatches(text, TOKEN, REACH)) {
        yield null;
        if (match === null) continue;
        const start = match.index;
        const before = text.slice(Math.max(0, start - 24), start);
        if (/base64,$/.test(before)) continue;
        const threshold = KEYWORD.test(before) ? 3.6 : 4.0;
        if (!looksRandom(match[0], threshold)) continue;
        yield { kind: 'secret', start, end: start + match[0].length, value: match[0], tier: 3, detector: 'entropy' };
      }
    }
  },
};
