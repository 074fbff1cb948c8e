/**
 * Precision and recall per kind on the labelled corpus (test/fixtures/pii-corpus.ts):
 * span-exact matching (kind, start and end equal) decides the targets; overlap matching
 * (same kind, spans intersect) is reported too. Prints the table; never prints values.
 */
import { describe, expect, it } from 'vitest';
import { PII_CORPUS, type CorpusKind } from '../../test/fixtures/pii-corpus.js';
import { detect } from './engine.js';

const KINDS: CorpusKind[] = ['email', 'phone', 'card', 'iban', 'ssn', 'ip', 'secret'];
const TARGETS: CorpusKind[] = ['email', 'card', 'iban', 'ssn', 'phone', 'ip'];

interface Tally {
  expected: number;
  found: number;
  exact: number;
  overlapTp: number;
  overlapFound: number;
}

function measure(): Record<CorpusKind, Tally> {
  const tallies = Object.fromEntries(KINDS.map((kind) => [kind, { expected: 0, found: 0, exact: 0, overlapTp: 0, overlapFound: 0 }])) as Record<CorpusKind, Tally>;
  for (const item of PII_CORPUS) {
    const found = detect(item.text);
    for (const span of item.spans) {
      const tally = tallies[span.kind];
      tally.expected += 1;
      if (found.some((d) => d.kind === span.kind && d.start === span.start && d.end === span.end)) tally.exact += 1;
      if (found.some((d) => d.kind === span.kind && d.start < span.end && span.start < d.end)) tally.overlapTp += 1;
    }
    for (const detection of found) {
      const tally = tallies[detection.kind as CorpusKind];
      if (!tally) continue;
      tally.found += 1;
      if (item.spans.some((s) => s.kind === detection.kind && detection.start < s.end && s.start < detection.end)) tally.overlapFound += 1;
    }
  }
  return tallies;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : a / b);

describe('PII corpus', () => {
  const tallies = measure();

  it('has at least 300 texts in four languages, with hard negatives', () => {
    expect(PII_CORPUS.length).toBeGreaterThanOrEqual(300);
    expect(new Set(PII_CORPUS.map((item) => item.lang))).toEqual(new Set(['en', 'fr', 'de', 'es']));
    expect(PII_CORPUS.filter((item) => item.spans.length === 0).length).toBeGreaterThanOrEqual(80);
  });

  it('meets the precision and recall targets (span-exact)', () => {
    const rows = KINDS.map((kind) => {
      const t = tallies[kind];
      return {
        kind,
        labelled: t.expected,
        detected: t.found,
        'precision (exact)': ratio(t.exact, t.found).toFixed(3),
        'recall (exact)': ratio(t.exact, t.expected).toFixed(3),
        'precision (overlap)': ratio(t.overlapFound, t.found).toFixed(3),
        'recall (overlap)': ratio(t.overlapTp, t.expected).toFixed(3),
      };
    });
    console.table(rows);
    for (const kind of TARGETS) {
      const t = tallies[kind];
      expect.soft(ratio(t.exact, t.expected), `${kind} recall`).toBeGreaterThanOrEqual(0.98);
      expect.soft(ratio(t.exact, t.found), `${kind} precision`).toBeGreaterThanOrEqual(0.95);
    }
  });
});
