/**
 * Shared types of the PII detectors and the redaction engine. A detection carries the
 * matched value so that the engine can build placeholders; callers must never log it —
 * log `kind` and counts only (see `summarize` in engine.ts).
 */
import type { CountryCode } from 'libphonenumber-js';

/** The kinds the built-in detectors report. Custom patterns may add any other kind name. */
export const BUILTIN_KINDS = ['email', 'phone', 'card', 'iban', 'ssn', 'ip', 'secret'] as const;
export type BuiltinPiiKind = (typeof BUILTIN_KINDS)[number];
/** A built-in kind or a custom one (lower-case letters, digits and `_`). */
export type PiiKind = BuiltinPiiKind | (string & {});

export interface Detection {
  kind: PiiKind;
  /** UTF-16 offsets into the scanned text, `end` exclusive. */
  start: number;
  end: number;
  /** The matched text (`text.slice(start, end)`). Never log it. */
  value: string;
  /** Which rule matched, e.g. `ipv6`, `openai`, `entropy`, or a custom pattern's name. */
  detector?: string;
}

/** A detector's raw candidate before overlap resolution; `tier` orders specificity (lower wins). */
export interface Candidate extends Detection {
  tier: number;
}

export interface CustomPattern {
  /** A label for the rule (reported as `detector`). */
  name: string;
  /** A JavaScript regular expression source (no slashes); compiled with the `g` and `u` flags. */
  regex: string;
  /** The kind it reports, e.g. `employee_id` → placeholders `[EMPLOYEE_ID_1]`. */
  kind: string;
  /** Extra flags, e.g. `i`. */
  flags?: string;
}

export interface DetectOptions {
  /** Switch built-in detectors off (all are on by default): `{ phone: false }`. */
  detectors?: Partial<Record<BuiltinPiiKind, boolean>>;
  /**
   * Regions tried for phone numbers written in national format (without `+`/`00`).
   * Default: US, GB, FR, DE, ES. International numbers are recognised for every region.
   */
  phoneRegions?: readonly CountryCode[];
  /** Extra patterns from the configuration. */
  custom?: readonly CustomPattern[];
  /** Shannon-entropy check for long random tokens (part of `secret`); default true. */
  entropy?: boolean;
}

export interface Detector {
  kind: BuiltinPiiKind;
  /**
   * The candidates in `text`, with a `null` step after each regex match (kept or not), so a
   * caller can pace a long scan: each step costs one match and its validation, never a
   * rescan of the text.
   */
  scan(text: string, options: DetectOptions): Iterable<Candidate | null>;
}
