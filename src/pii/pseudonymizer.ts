/**
 * Typed placeholders for one request. `[EMAIL_1]`, `[PHONE_2]`, … numbered per kind; the
 * same value (normalised per kind: digits only for cards, phones, IBANs and SSNs, lower
 * case for emails) gets the same placeholder everywhere in the request. A Pseudonymizer
 * holds the placeholder ↔ value map of one request and puts the values back into answers,
 * whole (`restore`) or streamed (`restorer()`), where a placeholder may arrive split across
 * chunks. Its string and JSON forms hold counts only, so logging it by mistake leaks nothing.
 */
import { detect, detectAsync, summarize, type Pace } from './engine.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';
import type { Detection, DetectOptions, PiiKind } from './types.js';

export interface RedactionResult {
  /** The text with every detection replaced by its placeholder. */
  text: string;
  /** The detections (with values: never log them — log `counts`). */
  detections: Detection[];
  /** Number of detections per kind. */
  counts: Record<PiiKind, number>;
}

const PLACEHOLDER = /\[([A-Z][A-Z0-9_]*_\d+)\]/g;
/** Characters restored per turn by `restoreAsync` (well under a millisecond of work each). */
const RESTORE_SLICE = 256 * 1024;

export function placeholderLabel(kind: PiiKind): string {
  return kind.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

function normalise(kind: PiiKind, value: string): string {
  switch (kind) {
    case 'email':
      return value.toLowerCase();
    case 'card':
    case 'ssn':
    case 'phone':
      return value.replace(/\D/g, '');
    case 'iban':
      return value.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
    default:
      return value;
  }
}

export class Pseudonymizer {
  readonly #byKey = new Map<string, string>();
  readonly #byPlaceholder = new Map<string, string>();
  readonly #counters = new Map<string, number>();
  #prefixes: Set<string> | undefined;
  #longest = 0;

  /** The placeholder of a value (a new one, numbered per kind, the first time). */
  placeholderFor(kind: PiiKind, value: string): string {
    const key = `${kind}\u0000${normalise(kind, value)}`;
    const existing = this.#byKey.get(key);
    if (existing !== undefined) return existing;
    const label = placeholderLabel(kind);
    const number = (this.#counters.get(label) ?? 0) + 1;
    this.#counters.set(label, number);
    const placeholder = `[${label}_${number}]`;
    this.#byKey.set(key, placeholder);
    this.#byPlaceholder.set(placeholder, value);
    this.#prefixes = undefined;
    this.#longest = Math.max(this.#longest, placeholder.length);
    return placeholder;
  }

  /** Replaces the given detections (non-overlapping, from `detect(text)`) with placeholders. */
  apply(text: string, detections: readonly Detection[]): string {
    if (detections.length === 0) return text;
    let out = '';
    let position = 0;
    for (const detection of detections) {
      out += text.slice(position, detection.start) + this.placeholderFor(detection.kind, detection.value);
      position = detection.end;
    }
    return out + text.slice(position);
  }

  /** `apply` for many detections: the same text, built in turns of at most `pace.sliceMs`. */
  async applyAsync(text: string, detections: readonly Detection[], pace: Pace = {}): Promise<string> {
    const sliceMs = pace.sliceMs ?? 10;
    const pause = pace.yieldToEventLoop ?? yieldToEventLoop;
    let sliceStart = performance.now();
    const parts: string[] = [];
    let position = 0;
    for (let index = 0; index < detections.length; index += 1) {
      const detection = detections[index] as Detection;
      parts.push(text.slice(position, detection.start), this.placeholderFor(detection.kind, detection.value));
      position = detection.end;
      if ((index & 255) === 255 && performance.now() - sliceStart >= sliceMs) {
        await pause();
        sliceStart = performance.now();
      }
    }
    parts.push(text.slice(position));
    return parts.join('');
  }

  /** Detects and replaces PII in `text`, recording the placeholders for `restore`. */
  redact(text: string, options?: DetectOptions): RedactionResult {
    const detections = detect(text, options);
    return { text: this.apply(text, detections), detections, counts: summarize(detections) };
  }

  /** `redact` for texts of any size, sharing the event loop as it goes (`detectAsync`). */
  async redactAsync(text: string, options?: DetectOptions, pace?: Pace): Promise<RedactionResult> {
    const detections = await detectAsync(text, options, pace);
    return { text: await this.applyAsync(text, detections, pace), detections, counts: summarize(detections) };
  }

  /** Puts the original values back for every placeholder this request issued; others stay. */
  restore(text: string): string {
    if (this.#byPlaceholder.size === 0 || !text.includes('[')) return text;
    return text.replace(PLACEHOLDER, (placeholder) => this.#byPlaceholder.get(placeholder) ?? placeholder);
  }

  /**
   * `restore` for texts of any size: restored in slices of `RESTORE_SLICE` characters, each
   * cut moved back to before a `[` whose placeholder would straddle it, with a turn of the
   * event loop between slices. Same result as `restore`.
   */
  async restoreAsync(text: string, pace: Pace = {}): Promise<string> {
    if (text.length <= RESTORE_SLICE) return this.restore(text);
    const pause = pace.yieldToEventLoop ?? yieldToEventLoop;
    const parts: string[] = [];
    let position = 0;
    while (position < text.length) {
      let cut = Math.min(text.length, position + RESTORE_SLICE);
      if (cut < text.length) {
        const open = text.lastIndexOf('[', cut - 1);
        if (open > position && text.indexOf(']', open) >= cut) cut = open;
      }
      parts.push(this.restore(text.slice(position, cut)));
      position = cut;
      if (position < text.length) await pause();
    }
    return parts.join('');
  }

  /** A restorer for a streamed answer: `push(chunk)` returns what can be sent now, `end()` the rest. */
  restorer(): StreamRestorer {
    return new StreamRestorer(this);
  }

  /** True when `tail` (starting with `[`) is a proper prefix of an issued placeholder. */
  isPlaceholderPrefix(tail: string): boolean {
    if (tail.length >= this.#longest) return false;
    if (this.#prefixes === undefined) {
      const prefixes = new Set<string>();
      for (const placeholder of this.#byPlaceholder.keys()) {
        for (let length = 1; length < placeholder.length; length += 1) prefixes.add(placeholder.slice(0, length));
      }
      this.#prefixes = prefixes;
    }
    return this.#prefixes.has(tail);
  }

  /** Number of distinct values held. */
  get size(): number {
    return this.#byPlaceholder.size;
  }

  /** Counts of placeholders per kind label — safe to log. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counters);
  }

  toJSON(): Record<string, number> {
    return this.counts();
  }

  toString(): string {
    return `Pseudonymizer(${this.size} values)`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/**
 * Restores placeholders in a stream of text chunks. Holds back only a possible partial
 * placeholder at the end of what it has seen (from the last `[` when what follows is a
 * proper prefix of an issued placeholder); everything else is released at once.
 */
export class StreamRestorer {
  #held = '';

  constructor(private readonly pseudonymizer: Pseudonymizer) {}

  push(chunk: string): string {
    const text = this.#held + chunk;
    const cut = text.lastIndexOf('[');
    if (cut !== -1 && this.pseudonymizer.isPlaceholderPrefix(text.slice(cut))) {
      this.#held = text.slice(cut);
      return this.pseudonymizer.restore(text.slice(0, cut));
    }
    this.#held = '';
    return this.pseudonymizer.restore(text);
  }

  /** The held-back text (not a placeholder after all), at the end of the stream. */
  end(): string {
    const rest = this.#held;
    this.#held = '';
    return this.pseudonymizer.restore(rest);
  }

  /** Characters currently held back. */
  get pending(): number {
    return this.#held.length;
  }
}

/** Masks `text` with typed placeholders; pass one Pseudonymizer for all texts of a request. */
export function mask(text: string, options?: DetectOptions, pseudonymizer: Pseudonymizer = new Pseudonymizer()): RedactionResult {
  return pseudonymizer.redact(text, options);
}
