import { describe, expect, it } from 'vitest';
import { scanMatches, SCAN_WINDOW } from './scan-matches.js';

/** A deterministic pseudo-random generator (so a failure can be replayed). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

function matchesOf(steps: Iterable<RegExpExecArray | null>): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (const step of steps) if (step !== null) out.push([step.index, step[0]]);
  return out;
}

const PATTERNS: Array<[string, RegExp]> = [
  ['digit runs with separators and lookarounds', /(?<![\p{L}\p{N}_.,/+-])\d+(?:[ -]\d+)*(?![\p{L}\p{N}_]|[.,]\d)/gu],
  ['e-mail-like', /(?<![\w.])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?![\w-])/g],
  ['bounded tokens', /(?<![A-Za-z0-9])[A-Za-z0-9]{24,64}(?![A-Za-z0-9])/g],
];

describe('scanMatches', () => {
  it('gives the matches of matchAll on large texts, whatever falls on the window edges', () => {
    const next = random(42);
    const pieces = ['1234 5678 9012', 'a.b+c@example.com', 'x'.repeat(30), 'Ab1'.repeat(12), '3.14', '12,5', ' ', '\n', 'word', '-', '.', '@'];
    const parts: string[] = [];
    for (let size = 0; size < SCAN_WINDOW * 12; ) {
      const piece = pieces[Math.floor(next() * pieces.length)]!;
      parts.push(piece);
      size += piece.length;
    }
    // Unbounded runs across window edges: a 100k digit run and a 70k token run.
    parts.splice(50, 0, ' ', '7'.repeat(100_000), ' ');
    parts.splice(3000, 0, ' ', 'Zz9'.repeat(23_000), ' ');
    const text = parts.join('');
    for (const [name, pattern] of PATTERNS) {
      expect(matchesOf(scanMatches(text, pattern, { behind: 2, ahead: 128 })), name).toEqual(matchesOf(text.matchAll(pattern)));
    }
  });

  it('pauses between windows: a text without a match is searched in many steps', () => {
    const text = 'abc '.repeat(250_000);
    const steps = [...scanMatches(text, /\d{3}/g, { behind: 1, ahead: 16 })];
    expect(steps.every((step) => step === null)).toBe(true);
    expect(steps.length).toBeGreaterThanOrEqual(Math.floor(text.length / SCAN_WINDOW));
  });
});
