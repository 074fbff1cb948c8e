/**
 * The detection engine: runs the enabled detectors and custom patterns over a text and
 * returns non-overlapping detections in text order. Overlaps are resolved greedily by
 * specificity tier first — well-known secret formats and custom patterns (0), then the
 * checksum- or structure-validated kinds: email, card, IBAN, SSN, IP (1), then phone (2),
 * then entropy-only secrets (3) — and by length (longest first) within a tier.
 */
import { cardDetector } from './detectors/card.js';
import { findCustom } from './detectors/custom.js';
import { emailDetector } from './detectors/email.js';
import { ibanDetector } from './detectors/iban.js';
import { ipDetector } from './detectors/ip.js';
import { phoneDetector } from './detectors/phone.js';
import { secretDetector } from './detectors/secret.js';
import { ssnDetector } from './detectors/ssn.js';
import type { Candidate, Detection, DetectOptions, Detector, PiiKind } from './types.js';

export const DETECTORS: readonly Detector[] = [
  secretDetector,
  emailDetector,
  ibanDetector,
  cardDetector,
  ssnDetector,
  ipDetector,
  phoneDetector,
];

export function resolveOverlaps(candidates: Candidate[]): Detection[] {
  const ordered = [...candidates].sort(
    (a, b) => a.tier - b.tier || b.end - b.start - (a.end - a.start) || a.start - b.start,
  );
  const accepted: Candidate[] = [];
  for (const candidate of ordered) {
    if (accepted.some((other) => candidate.start < other.end && other.start < candidate.end)) continue;
    accepted.push(candidate);
  }
  accepted.sort((a, b) => a.start - b.start);
  return accepted.map(({ tier: _tier, ...detection }) => detection);
}

/** All PII in `text`: non-overlapping, in text order. */
export function detect(text: string, options: DetectOptions = {}): Detection[] {
  if (text.length === 0) return [];
  const candidates: Candidate[] = [];
  for (const detector of DETECTORS) {
    if (options.detectors?.[detector.kind] === false) continue;
    for (const candidate of detector.find(text, options)) candidates.push(candidate);
  }
  if (options.custom && options.custom.length > 0) candidates.push(...findCustom(text, options.custom));
  if (candidates.length <= 1) return candidates.map(({ tier: _tier, ...detection }) => detection);
  return resolveOverlaps(candidates);
}

/** Counts per kind — what logs, headers and audit records may hold (never values). */
export function summarize(detections: readonly Pick<Detection, 'kind'>[]): Record<PiiKind, number> {
  const counts: Record<string, number> = {};
  for (const { kind } of detections) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
