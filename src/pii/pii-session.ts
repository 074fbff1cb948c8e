/**
 * The PII handling of one request (`PiiSession`): its policy, what was found, and the
 * placeholder map that puts originals back into answers and streams.
 */
import type { PiiPolicyName } from '../config/schema.js';
import { detect, detectAsync, Pseudonymizer, StreamRestorer } from './index.js';
import type { DetectOptions } from './types.js';

/** `email=2,card=1`: kinds in the order first found, never values. */
export function formatCounts(counts: ReadonlyMap<string, number>): string | null {
  if (counts.size === 0) return null;
  return [...counts].map(([kind, count]) => `${kind}=${count}`).join(',');
}

const PLACEHOLDER = /\[[A-Z][A-Z0-9_]*_\d+\]/g;

/** A value put back inside a JSON string literal (tool-call arguments): escaped as JSON wants. */
function restoreJsonEscaped(pseudonymizer: Pseudonymizer, text: string): string {
  if (pseudonymizer.size === 0 || !text.includes('[')) return text;
  return text.replace(PLACEHOLDER, (placeholder) => {
    const value = pseudonymizer.restore(placeholder);
    return value === placeholder ? placeholder : JSON.stringify(value).slice(1, -1);
  });
}

/**
 * The PII handling of one request: the policy, what was found, and (mask / pseudonymize)
 * the placeholder map. Never log it for values: its string and JSON forms hold counts only.
 */
export class PiiSession {
  readonly policy: PiiPolicyName;
  readonly options: DetectOptions;
  readonly pseudonymizer = new Pseudonymizer();
  readonly #counts = new Map<string, number>();

  constructor(policy: PiiPolicyName, options: DetectOptions) {
    this.policy = policy;
    this.options = options;
  }

  /** Scans a text: counts what it holds and returns it redacted (mask, pseudonymize) or unchanged (off, block). */
  text(text: string): string {
    if (this.policy === 'off' || text.length === 0) return text;
    const detections = detect(text, this.options);
    for (const { kind } of detections) this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1);
    if (this.policy === 'block' || detections.length === 0) return text;
    return this.pseudonymizer.apply(text, detections);
  }

  /** `text` for texts of any size: the same result, sharing the event loop as it goes. */
  async textAsync(text: string): Promise<string> {
    if (this.policy === 'off' || text.length === 0) return text;
    const detections = await detectAsync(text, this.options);
    for (const { kind } of detections) this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1);
    if (this.policy === 'block' || detections.length === 0) return text;
    return this.pseudonymizer.applyAsync(text, detections);
  }

  /**
   * A JSON text (tool-call arguments): its string values are scanned one by one, so that a
   * value with JSON escapes is seen as the model and the client see it; not JSON: as text.
   * Unchanged (same formatting) when nothing is found.
   */
  jsonText(text: string): string {
    if (this.policy === 'off' || text.length === 0) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.text(text);
    }
    let changed = false;
    const walk = (value: unknown): unknown => {
      if (typeof value === 'string') {
        const redacted = this.text(value);
        if (redacted !== value) changed = true;
        return redacted;
      }
      if (Array.isArray(value)) return value.map(walk);
      if (value !== null && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, walk(item)]));
      }
      return value;
    };
    const redacted = walk(parsed);
    return changed ? JSON.stringify(redacted) : text;
  }

  /** Kinds and counts found so far (`email=2,card=1`), or null. */
  counts(): string | null {
    return formatCounts(this.#counts);
  }

  get found(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  /** Whether answers get the originals back. */
  get restores(): boolean {
    return this.policy === 'pseudonymize' && this.pseudonymizer.size > 0;
  }

  restoreText(text: string): string {
    return this.restores ? this.pseudonymizer.restore(text) : text;
  }

  restoreTextAsync(text: string): Promise<string> {
    return this.restores ? this.pseudonymizer.restoreAsync(text) : Promise.resolve(text);
  }

  restoreJson(text: string): string {
    return this.restores ? restoreJsonEscaped(this.pseudonymizer, text) : text;
  }

  /** A stream restorer for text deltas. */
  textRestorer(): StreamRestorer {
    return this.pseudonymizer.restorer();
  }

  /** A stream restorer for argument deltas: values are JSON-escaped (they land inside JSON strings). */
  jsonRestorer(): StreamRestorer {
    const pseudonymizer = this.pseudonymizer;
    // StreamRestorer only asks its pseudonymizer these two questions.
    const view = {
      isPlaceholderPrefix: (tail: string) => pseudonymizer.isPlaceholderPrefix(tail),
      restore: (text: string) => restoreJsonEscaped(pseudonymizer, text),
    };
    return new StreamRestorer(view as unknown as Pseudonymizer);
  }

  toJSON(): { policy: PiiPolicyName; found: string | null } {
    return { policy: this.policy, found: this.counts() };
  }

  toString(): string {
    return `PiiSession(${this.policy}, ${this.counts() ?? 'none'})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

