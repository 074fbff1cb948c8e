/**
 * The semantic cache's vectors, in memory (per instance): for each scope (model, parameters
 * and earlier messages — see `semanticSplit`), the embeddings of the last user messages
 * answered and their answers. A lookup compares the query vector with every live vector of
 * its scope (brute force: the index is bounded by `maxEntries`, oldest dropped first) and
 * returns the most similar one with its cosine similarity.
 */
import type { CachedAnswer } from './cached-answer.js';

interface IndexEntry {
  scope: string;
  vector: Float32Array;
  answer: CachedAnswer;
  expiresAt: number;
  removed: boolean;
}

export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  const length = Math.min(a.length, b.length);
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let index = 0; index < length; index++) {
    const x = a[index]!;
    const y = b[index]!;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

export class SemanticIndex {
  readonly #byScope = new Map<string, IndexEntry[]>();
  /** Every entry in insertion order (for the bound). */
  readonly #order: IndexEntry[] = [];
  readonly #maxEntries: number;
  readonly #now: () => number;
  #live = 0;

  constructor(options: { maxEntries: number; now?: () => number }) {
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#live;
  }

  add(scope: string, vector: Float32Array, answer: CachedAnswer, ttlMs: number): void {
    const entry: IndexEntry = { scope, vector, answer, expiresAt: this.#now() + ttlMs, removed: false };
    let entries = this.#byScope.get(scope);
    if (!entries) {
      entries = [];
      this.#byScope.set(scope, entries);
    }
    entries.push(entry);
    this.#order.push(entry);
    this.#live++;
    while (this.#live > this.#maxEntries) {
      const oldest = this.#order.shift();
      if (oldest && !oldest.removed) this.#remove(oldest);
    }
    // Keep the order list from growing with entries removed by expiry.
    if (this.#order.length > 2 * this.#maxEntries) {
      const kept = this.#order.filter((item) => !item.removed);
      this.#order.length = 0;
      this.#order.push(...kept);
    }
  }

  #remove(entry: IndexEntry): void {
    entry.removed = true;
    this.#live--;
    const entries = this.#byScope.get(entry.scope);
    if (!entries) return;
    const position = entries.indexOf(entry);
    if (position >= 0) entries.splice(position, 1);
    if (entries.length === 0) this.#byScope.delete(entry.scope);
  }

  /** The most similar live entry of the scope, or null when the scope has none. */
  nearest(scope: string, vector: Float32Array): { answer: CachedAnswer; similarity: number } | null {
    const entries = this.#byScope.get(scope);
    if (!entries) return null;
    const now = this.#now();
    let best: IndexEntry | null = null;
    let bestSimilarity = -Infinity;
    for (const entry of [...entries]) {
      if (entry.expiresAt <= now) {
        this.#remove(entry);
        continue;
      }
      const similarity = cosineSimilarity(vector, entry.vector);
      if (similarity > bestSimilarity) {
        best = entry;
        bestSimilarity = similarity;
      }
    }
    return best ? { answer: best.answer, similarity: bestSimilarity } : null;
  }
}
