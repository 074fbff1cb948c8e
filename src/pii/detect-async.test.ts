import { describe, expect, it } from 'vitest';
import { detect, detectAsync, resolveOverlaps } from './engine.js';
import { Pseudonymizer } from './pseudonymizer.js';
import { samplePrompt } from '../../test/support/pii-sample.js';
import type { Candidate, Detection } from './types.js';

/** Blocks that share no context (a long blank run between them): detections add up. */
const SEPARATOR = `\n${' '.repeat(64)}\n`;

function offsetDetections(blocks: string[]): Detection[] {
  const out: Detection[] = [];
  let offset = 0;
  for (const block of blocks) {
    for (const detection of detect(block)) out.push({ ...detection, start: detection.start + offset, end: detection.end + offset });
    offset += block.length + SEPARATOR.length;
  }
  return out;
}

/** The greedy choice as first written: accept in priority order what overlaps nothing accepted (quadratic). */
function naiveResolve(candidates: Candidate[]): Detection[] {
  const ordered = [...candidates].sort((a, b) => a.tier - b.tier || b.end - b.start - (a.end - a.start) || a.start - b.start);
  const accepted: Candidate[] = [];
  for (const candidate of ordered) {
    if (accepted.some((other) => candidate.start < other.end && other.start < candidate.end)) continue;
    accepted.push(candidate);
  }
  return accepted.sort((a, b) => a.start - b.start).map(({ tier: _tier, ...detection }) => detection);
}

describe('detection of large texts', () => {
  it('finds in a 600 KB text what it finds in each of its parts, sync and async', async () => {
    const blocks = Array.from({ length: 40 }, (_, index) => samplePrompt(15_000).replaceAll('example', `example${index}`));
    const text = blocks.join(SEPARATOR);
    const expected = offsetDetections(blocks);
    expect(expected.length).toBeGreaterThan(1000);
    expect(detect(text)).toEqual(expected);
    expect(await detectAsync(text)).toEqual(expected);
  });

  it('detectAsync shares the event loop: 64 KB of digit groups is scanned in many short turns', async () => {
    // Digit groups are phone candidates: each is validated (the costliest step there is).
    const text = Array.from({ length: 8_000 }, (_, index) => `${1_000_000 + index * 7} `).join('');
    let pauses = 0;
    let worst = 0;
    let last = performance.now();
    const started = last;
    await detectAsync(text, {}, {
      sliceMs: 5,
      yieldToEventLoop: async () => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        pauses += 1;
        await new Promise((resolve) => setImmediate(resolve));
        last = performance.now();
      },
    });
    const total = performance.now() - started;
    // The scan took many turns, none a large part of the whole (a blocking scan is one turn).
    expect(pauses).toBeGreaterThan(10);
    expect(worst).toBeLessThan(total / 4);
  });

  it('resolves overlaps as the greedy pass did, in linear time', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let round = 0; round < 200; round += 1) {
      const candidates: Candidate[] = Array.from({ length: 30 }, (_, index) => {
        const start = Math.floor(next() * 200);
        const end = start + 1 + Math.floor(next() * 20);
        return { kind: `k${index % 3}`, start, end, value: 'v', tier: Math.floor(next() * 4) };
      });
      expect(resolveOverlaps(candidates)).toEqual(naiveResolve(candidates));
    }
    // A chain of 200,000 overlapping candidates: linear, not quadratic.
    const chain: Candidate[] = Array.from({ length: 200_000 }, (_, index) => ({ kind: 'x', start: index * 2, end: index * 2 + 3, value: 'vvv', tier: 1 }));
    const started = performance.now();
    expect(resolveOverlaps(chain)).toHaveLength(100_000);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('restoreAsync restores as restore does, across its slices', async () => {
    const pseudonymizer = new Pseudonymizer();
    const masked = pseudonymizer.redact(samplePrompt(600_000)).text;
    expect(masked).toMatch(/\[EMAIL_1\]/);
    expect(await pseudonymizer.restoreAsync(masked)).toBe(pseudonymizer.restore(masked));
    const redacted = await new Pseudonymizer().redactAsync(samplePrompt(600_000));
    expect(redacted.text).toBe(masked);
  });
});
