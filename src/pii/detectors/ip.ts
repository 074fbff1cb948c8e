/**
 * IP addresses. IPv4: four decimal octets 0–255 without leading zeros, not part of a longer
 * dotted run (`1.2.3.4.5`) and not right after a version cue (`v`, `version`, `release`,
 * `build`, `firmware`, `Version`…): "version 1.2.3.4" is a version string, not an address.
 * Three-part numbers (`1.2.3`) never match. A port or CIDR suffix is not part of the span.
 * IPv6: runs of hex digits, colons (and an embedded IPv4 tail) accepted by `node:net`
 * `isIP`; a zone id (`%eth0`) is left out.
 */
import { isIP } from 'node:net';
import { scanMatches, type Reach } from '../scan-matches.js';
import type { Detector } from '../types.js';

/** How far a match, its lookbehind and lookahead reach (see scan-matches.ts). */
const REACH: Reach = { behind: 2, ahead: 64 };

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\p{L}\\p{N}_.]|\\d\\.)${OCTET}(?:\\.${OCTET}){3}(?![\\p{N}]|\\.\\d|[\\p{L}_])`, 'gu');
const VERSION_CUE = /(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bfirmware|\bfw|\bkernel|\bversión|\bvers\.|\bnode|\bpython|\bjava)\s*[:=]?\s*$/i;
const IPV6 = /(?<![\p{L}\p{N}_:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?:\.\d{1,3}){0,3}(?![\p{L}\p{N}_:]|\.\d)/gu;

export const ipDetector: Detector = {
  kind: 'ip',
  *scan(text) {
    if (text.includes('.')) {
      for (const match of scanMatches(text, IPV4, REACH)) {
        yield null;
        if (match === null) continue;
        const start = match.index;
        if (VERSION_CUE.test(text.slice(Math.max(0, start - 16), start))) continue;
        yield { kind: 'ip', start, end: start + match[0].length, value: match[0], tier: 1, detector: 'ipv4' };
      }
    }
    if (text.includes(':')) {
      for (const match of scanMatches(text, IPV6, REACH)) {
        yield null;
        if (match === null) continue;
        const value = match[0];
        if (!/[0-9A-Fa-f]/.test(value) || isIP(value) !== 6) continue;
        const start = match.index;
        yield { kind: 'ip', start, end: start + value.length, value, tier: 1, detector: 'ipv6' };
      }
    }
  },
};
