/**
 * The detection engine: runs the enabled detectors and custom patterns over a text and
 * returns non-overlapping detections in text order. Overlaps are resolved greedily by
 * specificity tier first — well-known secret formats and custom patterns (0), then the
 * checksum- or structure-validated kinds: email, card, IBAN, SSN, IP (1), then phone (2),
 * then entropy-only secrets (3) — and by length (longest first) within a tier. `detectAsync`
 * gives the same result for large texts, sharing the event loop as it goes.
 */
import { cardDetector } from './detectors/card.js';
import { scanCustom } from './detectors/custom.js';
import { emailDetector } from './detectors/email.js';
import { ibanDetector } from './detectors/iban.js';
import { ipDetector } from './detectors/ip.js';
import { phoneDetector } from './detectors/phone.js';
import { secretDetector } from './detectors/secret.js';
import { ssnDetector } from './detectors/ssn.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';
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

/**
 * The greedy choice among overlapping candidates, one cluster at a time: a cluster is a
 * maximal run of candidates (by start) whose spans chain into each other, and candidates of
 * different clusters never overlap, so choosing per cluster gives what one greedy pass over
 * all candidates gives — in time linear in the candidates and their lengths, not quadratic.
 */
function* resolvedClusters(candidates: readonly Candidate[]): Generator<Detection[]> {
  const byStart = [...candidates].sort((a, b) => a.start - b.start);
  let cluster: Candidate[] = [];
  let clusterEnd = -1;
  for (const candidate of byStart) {
    if (cluster.length > 0 && candidate.start >= clusterEnd) {
      yield resolveCluster(cluster);
      cluster = [];
    }
    cluster.push(candidate);
    clusterEnd = cluster.length === 1 ? candidate.end : Math.max(clusterEnd, candidate.end);
  }
  if (cluster.length > 0) yield resolveCluster(cluster);
}

/** Greedy by tier, then length (longest first), then position; marks taken characters, so no rescans. */
function resolveCluster(cluster: Candidate[]): Detection[] {
  if (cluster.length === 1) return cluster.map(({ tier: _tier, ...detection }) => detection);
  const ordered = [...cluster].sort((a, b) => a.tier - b.tier || b.end - b.start - (a.end - a.start) || a.start - b.start);
  let origin = Infinity;
  let end = 0;
  for (const candidate of cluster) {
    origin = Math.min(origin, candidate.start);
    end = Math.max(end, candidate.end);
  }
  const taken = new Uint8Array(end - origin);
  const accepted: Candidate[] = [];
  for (const candidate of ordered) {
    let free = true;
    for (let index = candidate.start - origin; index < candidate.end - origin; index += 1) {
      if (taken[index] === 1) {
        free = false;
        break;
      }
    }
    if (!free) continue;
    taken.fill(1, candidate.start - origin, candidate.end - origin);
    accepted.push(candidate);
  }
  accepted.sort((a, b) => a.start - b.start);
  return accepted.map(({ tier: _tier, ...detection }) => detection);
}

export function resolveOverlaps(candidates: Candidate[]): Detection[] {
  const out: Detection[] = [];
  for (const detections of resolvedClusters(candidates)) for (const detection of detections) out.push(detection);
  return out;
}

/** Every candidate of the enabled detectors and custom patterns, with `null` steps between matches. */
function* scanAll(text: string, options: DetectOptions): Generator<Candidate | null> {
  for (const detector of DETECTORS) {
    if (options.detectors?.[detector.kind] === false) continue;
    yield* detector.scan(text, options);
  }
  if (options.custom && options.custom.length > 0) yield* scanCustom(text, options.custom);
}

/** All PII in `text`: non-overlapping, in text order. */
export function detect(text: string, options: DetectOptions = {}): Detection[] {
  if (text.length === 0) return [];
  const candidates: Candidate[] = [];
  for (const step of scanAll(text, options)) if (step !== null) candidates.push(step);
  if (candidates.length <= 1) return candidates.map(({ tier: _tier, ...detection }) => detection);
  return resolveOverlaps(candidates);
}

/** How `detectAsync` shares the event loop. */
export interface Pace {
  /** Work at most this long before letting other requests run (default 10 ms). */
  sliceMs?: number;
  /** How to let them run (default: a macrotask turn, `setImmediate`). */
  yieldToEventLoop?: () => Promise<void>;
}

/**
 * `detect` for texts of any size without holding the event loop: the same scan and the
 * same result, paused every `sliceMs` (checked after each regex match) to let other
 * requests run. Each step is one match and its validation, so no turn is much longer than
 * `sliceMs`, whatever the text holds.
 */
export async function detectAsync(text: string, options: DetectOptions = {}, pace: Pace = {}): Promise<Detection[]> {
  if (text.length === 0) return [];
  const sliceMs = pace.sliceMs ?? 10;
  const pause = pace.yieldToEventLoop ?? yieldToEventLoop;
  let sliceStart = performance.now();
  const candidates: Candidate[] = [];
  for (const step of scanAll(text, options)) {
    if (step !== null) candidates.push(step);
    else if (performance.now() - sliceStart >= sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
  }
  const out: Detection[] = [];
  for (const detections of resolvedClusters(candidates)) {
    for (const detection of detections) out.push(detection);
    if (performance.now() - sliceStart >= sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
  }
  return out;
}

/** Counts per kind — what logs, headers and audit records may hold (never values). */
export function summarize(detections: readonly Pick<Detection, 'kind'>[]): Record<PiiKind, number> {
  const counts: Record<string, number> = {};
  for (const { kind } of detections) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
