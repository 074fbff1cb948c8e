/**
 * The record/replay cassette: a JSONL file, one upstream exchange a line (see
 * docs/record-replay.md). This module holds the format (encoding, validation, secret
 * redaction), the canonical matching key of a request, and the in-memory index that serves
 * recorded exchanges in order. No I/O but `loadCassette` (a synchronous read at start-up).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';

export const CASSETTE_VERSION = 1;

export type MatchMode = 'body' | 'body_and_path';

/** One chunk of a response body: `ms` after the response headers arrived, as UTF-8 text or (when not valid UTF-8 on its own) base64. */
export type CassetteChunk = { ms: number; text: string } | { ms: number; base64: string };

export interface CassetteExchange {
  version: number;
  recorded_at: string;
  request: {
    method: string;
    /** Path and query on the upstream origin, e.g. `/v1/chat/completions`. */
    path: string;
    /** Only non-secret headers (content-type, accept). */
    headers: Record<string, string>;
    /** SHA-256 of the canonical body (what a replay miss names). */
    body_sha256: string;
    /** The JSON body as sent upstream (secrets redacted); `body_text` when it is not JSON. */
    body?: unknown;
    body_text?: string;
  };
  response: {
    status: number;
    /** Only the headers worth keeping (content-type, retry-after, x-request-id, openai-*, x-ratelimit-*). */
    headers: Record<string, string>;
    /** Milliseconds from sending the request to the response headers. */
    ms: number;
    chunks: CassetteChunk[];
  };
}

/** Request headers kept in the cassette (everything else may carry a secret). */
const keptRequestHeaders = new Set(['content-type', 'accept']);

/** Response headers kept in the cassette. */
export function isKeptResponseHeader(name: string): boolean {
  return (
    name === 'content-type' ||
    name === 'retry-after' ||
    name === 'retry-after-ms' ||
    name === 'x-request-id' ||
    name === 'openai-processing-ms' ||
    name === 'openai-version' ||
    name === 'openai-model' ||
    name.startsWith('x-ratelimit-')
  );
}

/** Header names whose values are secrets (redacted from bodies, never stored). */
const secretHeaderName = /auth|key|token|secret|cookie|password|signature|credential/i;
const shortestRedactedSecret = 6;
export const REDACTED = '[REDACTED]';

/** The secret values among a flat `[name, value, …]` header list (bearer tokens without their scheme). */
export function secretsOf(headers: readonly string[]): string[] {
  const secrets = new Set<string>();
  for (let index = 0; index + 1 < headers.length; index += 2) {
    const name = headers[index]!;
    const value = headers[index + 1]!;
    if (!secretHeaderName.test(name)) continue;
    const scheme = /^(bearer|basic|token)\s+(.+)$/i.exec(value);
    const secret = scheme ? scheme[2]!.trim() : value.trim();
    if (secret.length >= shortestRedactedSecret) secrets.add(secret);
    if (value.trim().length >= shortestRedactedSecret) secrets.add(value.trim());
  }
  // Longest first, so that a secret containing another is replaced whole.
  return [...secrets].sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (result.includes(secret)) result = result.split(secret).join(REDACTED);
  return result;
}

export function keptRequestHeadersOf(headers: readonly string[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (let index = 0; index + 1 < headers.length; index += 2) {
    const name = headers[index]!.toLowerCase();
    if (keptRequestHeaders.has(name)) kept[name] = headers[index + 1]!;
  }
  return kept;
}

export function keptResponseHeadersOf(headers: IncomingHttpHeaders): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lowerName = name.toLowerCase();
    if (value === undefined || !isKeptResponseHeader(lowerName)) continue;
    kept[lowerName] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}

/** JSON with object keys sorted at every level: the same body gives the same text whatever its key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) sorted[key] = sortKeys(item);
  }
  return sorted;
}

/** The parsed JSON body, or undefined when the text is not JSON. */
export function parseBody(text: string): { json: unknown } | undefined {
  try {
    return { json: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** The canonical text of a body: sorted-key JSON, or the text itself when it is not JSON. */
export function canonicalBody(bodyText: string): string {
  const parsed = parseBody(bodyText);
  return parsed === undefined ? bodyText : canonicalJson(parsed.json);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The matching key of a request. A streamed and a non-streamed request differ (their bodies' `stream` differ). */
export function matchKey(mode: MatchMode, method: string, path: string, canonical: string): string {
  return mode === 'body' ? canonical : `${method.toUpperCase()} ${path}\n${canonical}`;
}

/** A chunk as stored: text when the bytes are valid UTF-8 by themselves (and survive the round trip), else base64. */
export function encodeChunk(bytes: Uint8Array, ms: number): CassetteChunk {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buffer.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') === buffer.length && Buffer.from(text, 'utf8').equals(buffer)) return { ms, text };
  return { ms, base64: buffer.toString('base64') };
}

export function decodeChunk(chunk: CassetteChunk): Buffer {
  return 'text' in chunk ? Buffer.from(chunk.text, 'utf8') : Buffer.from(chunk.base64, 'base64');
}

export class CassetteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CassetteError';
  }
}

/** Checks one parsed line; returns the reason it is not an exchange, or undefined. */
function invalidReason(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const exchange = value as Partial<CassetteExchange>;
  if (exchange.version !== CASSETTE_VERSION) return `unsupported version ${JSON.stringify(exchange.version)} (this Chatgate reads version ${CASSETTE_VERSION})`;
  const request = exchange.request;
  if (request === null || typeof request !== 'object') return "no 'request' object";
  if (typeof request.method !== 'string' || typeof request.path !== 'string') return "'request' needs 'method' and 'path' strings";
  if (request.body === undefined && typeof request.body_text !== 'string') return "'request' needs 'body' or 'body_text'";
  const response = exchange.response;
  if (response === null || typeof response !== 'object') return "no 'response' object";
  if (!Number.isInteger(response.status) || (response.status as number) < 100 || (response.status as number) > 599) return "'response.status' is not an HTTP status";
  if (response.headers === null || typeof response.headers !== 'object' || Array.isArray(response.headers)) return "'response.headers' is not an object";
  for (const header of Object.values(response.headers)) if (typeof header !== 'string') return "'response.headers' values must be strings";
  if (response.ms !== undefined && (typeof response.ms !== 'number' || response.ms < 0)) return "'response.ms' is not a duration";
  if (!Array.isArray(response.chunks)) return "'response.chunks' is not a list";
  for (const [position, chunk] of response.chunks.entries()) {
    if (chunk === null || typeof chunk !== 'object') return `chunk ${position} is not an object`;
    const record = chunk as Record<string, unknown>;
    if (typeof record['ms'] !== 'number' || record['ms'] < 0) return `chunk ${position} has no 'ms'`;
    if (typeof record['text'] !== 'string' && typeof record['base64'] !== 'string') return `chunk ${position} has neither 'text' nor 'base64'`;
  }
  return undefined;
}

/** Parses a cassette's text; throws a CassetteError naming the file and line of the first bad line. */
export function parseCassette(text: string, file: string): CassetteExchange[] {
  const exchanges: CassetteExchange[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new CassetteError(`Cassette ${file}, line ${index + 1}: not valid JSON (a cassette holds one JSON exchange a line).`);
    }
    const reason = invalidReason(value);
    if (reason !== undefined) throw new CassetteError(`Cassette ${file}, line ${index + 1}: ${reason}.`);
    exchanges.push(value as CassetteExchange);
  });
  return exchanges;
}

/** Reads a cassette file; a missing file is an error only when `required`. */
export function loadCassette(file: string, required: boolean): CassetteExchange[] {
  if (!existsSync(file)) {
    if (!required) return [];
    throw new CassetteError(
      `Cassette ${file} does not exist. Record it first: run Chatgate with record_replay.mode: record (or CHATGATE_RECORD_REPLAY=record CHATGATE_CASSETTE=${file}) against a reachable upstream.`,
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CassetteError(`Cassette ${file} cannot be read: ${(error as Error).message}`);
  }
  return parseCassette(text, file);
}

/** The canonical body of a recorded request. */
export function recordedCanonicalBody(exchange: CassetteExchange): string {
  return exchange.request.body !== undefined ? canonicalJson(exchange.request.body) : canonicalBody(exchange.request.body_text ?? '');
}

/**
 * Recorded exchanges by matching key. Several exchanges with one key are served in recorded
 * order; once they are used up, the last one is served again for every later request.
 */
export class CassetteIndex {
  private readonly entries = new Map<string, { exchanges: CassetteExchange[]; next: number }>();
  private readonly mode: MatchMode;

  constructor(mode: MatchMode, exchanges: readonly CassetteExchange[] = []) {
    this.mode = mode;
    for (const exchange of exchanges) this.add(exchange);
  }

  get size(): number {
    let count = 0;
    for (const entry of this.entries.values()) count += entry.exchanges.length;
    return count;
  }

  add(exchange: CassetteExchange): void {
    const key = matchKey(this.mode, exchange.request.method, exchange.request.path, recordedCanonicalBody(exchange));
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { exchanges: [], next: 0 };
      this.entries.set(key, entry);
    }
    entry.exchanges.push(exchange);
  }

  /** The next exchange recorded for this request, or undefined. */
  take(method: string, path: string, canonical: string): CassetteExchange | undefined {
    const entry = this.entries.get(matchKey(this.mode, method, path, canonical));
    if (entry === undefined) return undefined;
    const exchange = entry.exchanges[Math.min(entry.next, entry.exchanges.length - 1)];
    entry.next++;
    return exchange;
  }
}
