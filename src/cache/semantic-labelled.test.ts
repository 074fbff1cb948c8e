/**
 * Measures the semantic cache on a labelled set (test/fixtures/semantic-pairs.ts) with the
 * mock provider's embeddings (hashed character trigrams: lexical, not semantic). For each
 * threshold: the hit rate (paraphrases served from the cache) and the false-hit rate (near
 * misses served the wrong answer), once with each pair alone in the index and once with
 * every cached prompt in one index. The figures are printed and quoted in docs/cache.md.
 */
import { describe, expect, it } from 'vitest';
import { SEMANTIC_PAIRS } from '../../test/fixtures/semantic-pairs.js';
import { mockEmbedding } from '../providers/mock/mock-embedding.js';
import type { CachedAnswer } from './cached-answer.js';
import { SemanticIndex } from './semantic-index.js';

const answerFor = (prompt: string): CachedAnswer => ({
  kind: 'chat',
  result: { choices: [{ index: 0, message: { role: 'assistant', content: `answer to ${prompt}`, refusal: null }, finishReason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } },
});
const textOf = (answer: CachedAnswer) => (answer.kind === 'chat' ? answer.result.choices[0]!.message.content : '');

interface Figures {
  threshold: number;
  hits: number;
  paraphrases: number;
  falseHits: number;
  nearMisses: number;
}

function measure(threshold: number, pooled: boolean): Figures {
  const paraphrases = SEMANTIC_PAIRS.filter((pair) => pair.same).length;
  const figures: Figures = { threshold, hits: 0, paraphrases, falseHits: 0, nearMisses: SEMANTIC_PAIRS.length - paraphrases };
  const pool = new SemanticIndex({ maxEntries: 1000 });
  if (pooled) for (const prompt of new Set(SEMANTIC_PAIRS.map((pair) => pair.cached))) pool.add('scope', mockEmbedding(prompt), answerFor(prompt), 60_000);
  for (const pair of SEMANTIC_PAIRS) {
    let index = pool;
    if (!pooled) {
      index = new SemanticIndex({ maxEntries: 10 });
      index.add('scope', mockEmbedding(pair.cached), answerFor(pair.cached), 60_000);
    }
    const found = index.nearest('scope', mockEmbedding(pair.asked));
    if (!found || found.similarity < threshold) continue;
    const right = pair.same && textOf(found.answer) === `answer to ${pair.cached}`;
    if (right) figures.hits++;
    else figures.falseHits++;
  }
  return figures;
}

const percent = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;

describe('semantic cache on the labelled set (mock trigram embeddings)', () => {
  it('has at least 40 pairs, both kinds', () => {
    expect(SEMANTIC_PAIRS.length).toBeGreaterThanOrEqual(40);
    expect(SEMANTIC_PAIRS.filter((pair) => pair.same).length).toBeGreaterThanOrEqual(20);
    expect(SEMANTIC_PAIRS.filter((pair) => !pair.same).length).toBeGreaterThanOrEqual(20);
  });

  it('measures hit and false-hit rates by threshold', () => {
    const rows: string[] = [];
    const results = new Map<string, Figures>();
    for (const pooled of [false, true]) {
      for (const threshold of [0.85, 0.9, 0.93, 0.95, 0.97, 0.99]) {
        const figures = measure(threshold, pooled);
        results.set(`${pooled}/${threshold}`, figures);
        rows.push(
          `${pooled ? 'pooled' : 'pairwise'} threshold ${threshold.toFixed(2)}: hit rate ${figures.hits}/${figures.paraphrases} (${percent(figures.hits, figures.paraphrases)}), ` +
            `false-hit rate ${figures.falseHits}/${figures.nearMisses} (${percent(figures.falseHits, figures.nearMisses)})`,
        );
      }
    }
    console.log(`Semantic cache, ${SEMANTIC_PAIRS.length} labelled pairs:\n${rows.join('\n')}`);
    // The default threshold (0.95): few hits (trigram embeddings only see surface rewording) and
    // one false hit in 24 ("World War II" / "World War I": one character apart).
    expect(results.get('false/0.95')).toMatchObject({ hits: 6, falseHits: 1 });
    expect(results.get('false/0.97')).toMatchObject({ falseHits: 0 });
    // A lower threshold buys hits with false hits.
    expect(results.get('false/0.85')!.falseHits).toBeGreaterThan(5);
  });
});
