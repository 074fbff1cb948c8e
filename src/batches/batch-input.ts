/**
 * Reads and checks a batch's input file, line by line (streamed, never the whole file as one
 * string): each line must be a JSON object with a unique `custom_id`, `method` POST, the
 * batch's `url` and a `body` naming a known `model`. Problems are reported per line
 * (1-based), OpenAI's way; the body itself is checked later, by the endpoint that runs it.
 * Blank lines are skipped. Deterministic: a worker that restarts re-reads the same lines.
 * A valid line is remembered by where it is in the file (byte offset and length), not by its
 * text, so a batch's memory does not grow with the size of its requests (images, long
 * prompts): `requestBody` reads a line's body back when it runs.
 */
import type { Readable } from 'node:stream';
import type { BlobReader } from '../files/blob-store.js';
import type { BatchLineError } from './batch-object.js';

export interface ValidLine {
  kind: 'request';
  line: number;
  customId: string;
  model: string;
  /** Where the line is in the input file (bytes, without its line break). */
  offset: number;
  length: number;
}

export interface InvalidLine {
  kind: 'invalid';
  line: number;
  /** The line's custom_id when it had a usable one (a duplicate, for example). */
  customId: string | null;
  error: BatchLineError;
}

export type InputLine = ValidLine | InvalidLine;

export interface InputCheck {
  /** Every non-blank line, in file order. */
  lines: InputLine[];
  valid: number;
  invalid: number;
  /** A problem with the file as a whole (empty, too many lines): the batch fails. */
  fileError: BatchLineError | null;
}

export interface InputCheckOptions {
  endpoint: string;
  /** Whether a model name is served here (unknown models are line errors). */
  modelExists: (name: string) => boolean;
  maxRequests: number;
}

/** Job item keys: one per line, in file order; valid lines by custom_id (exactly once each). */
export function itemKeyOf(line: InputLine): string {
  return line.kind === 'request' ? `c:${line.customId}` : `l:${line.line}`;
}

function lineError(line: number | null, code: string, message: string, param: string | null = null): BatchLineError {
  return { code, message, param, line };
}

function checkLine(text: string, line: number, offset: number, length: number, seen: Set<string>, options: InputCheckOptions): InputLine {
  const invalid = (customId: string | null, code: string, message: string, param: string | null = null): InvalidLine => ({
    kind: 'invalid',
    line,
    customId,
    error: lineError(line, code, message, param),
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return invalid(null, 'invalid_json_line', `Line ${line} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return invalid(null, 'invalid_request', `Line ${line} must be a JSON object with custom_id, method, url and body.`);
  }
  const request = parsed as Record<string, unknown>;
  const customId = request.custom_id;
  if (typeof customId !== 'string' || customId === '') {
    return invalid(null, 'missing_required_parameter', `Line ${line} has no custom_id (a non-empty string).`, 'custom_id');
  }
  if (seen.has(customId)) {
    return invalid(customId, 'duplicate_custom_id', `The custom_id ${JSON.stringify(customId)} on line ${line} is used by an earlier line; each must be unique.`, 'custom_id');
  }
  seen.add(customId);
  if (request.method !== 'POST') {
    return invalid(customId, 'invalid_method', `Line ${line} has method ${JSON.stringify(request.method ?? null)}; only "POST" is supported.`, 'method');
  }
  if (request.url !== options.endpoint) {
    return invalid(
      customId,
      'invalid_url',
      `Line ${line} has url ${JSON.stringify(request.url ?? null)}, which does not match the batch's endpoint ${options.endpoint}.`,
      'url',
    );
  }
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return invalid(customId, 'missing_required_parameter', `Line ${line} has no body (a JSON object with the request).`, 'body');
  }
  const model = (body as Record<string, unknown>).model;
  if (typeof model !== 'string' || model === '') {
    return invalid(customId, 'missing_required_parameter', `Line ${line}: the body has no model.`, 'body.model');
  }
  if (!options.modelExists(model)) {
    return invalid(customId, 'model_not_found', `Line ${line}: the model ${JSON.stringify(model)} does not exist.`, 'body.model');
  }
  const stream = (body as Record<string, unknown>).stream;
  if (stream !== undefined && stream !== null && stream !== false) {
    return invalid(customId, 'invalid_value', `Line ${line}: streaming is not available in a batch; remove "stream".`, 'body.stream');
  }
  return { kind: 'request', line, customId, model, offset, length };
}

/** The file's lines with their byte offsets (a CR before the LF is not part of the line). */
async function* linesWithOffsets(input: AsyncIterable<Uint8Array>): AsyncGenerator<{ text: string; offset: number; length: number }> {
  const decoder = new TextDecoder();
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let start = 0;
  const line = (parts: Buffer[], length: number) => {
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    return { text: decoder.decode(bytes), offset: start, length: bytes.length };
  };
  for await (const chunk of input) {
    const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let from = 0;
    for (let newline = buffer.indexOf(0x0a, from); newline !== -1; newline = buffer.indexOf(0x0a, from)) {
      const piece = buffer.subarray(from, newline);
      yield line([...pending, piece], pendingLength + piece.length);
      start += pendingLength + piece.length + 1;
      pending = [];
      pendingLength = 0;
      from = newline + 1;
    }
    if (from < buffer.length) {
      pending.push(Buffer.from(buffer.subarray(from)));
      pendingLength += buffer.length - from;
    }
  }
  if (pendingLength > 0) yield line(pending, pendingLength);
}

/** The body of a valid line, as JSON text, read back from the input file; null when the file changed under it. */
export async function requestBody(input: BlobReader, line: ValidLine): Promise<string | null> {
  const bytes = await input.read(line.offset, line.length);
  if (bytes.length !== line.length) return null;
  const parsed = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, '')) as { body: unknown };
  return JSON.stringify(parsed.body);
}

/** Reads the whole input and checks every line. */
export async function checkBatchInput(input: Readable, options: InputCheckOptions): Promise<InputCheck> {
  const lines: InputLine[] = [];
  const seen = new Set<string>();
  let valid = 0;
  let lineNumber = 0;
  let nonBlank = 0;
  for await (const { text, offset, length } of linesWithOffsets(input)) {
    lineNumber++;
    if (text.trim() === '') continue;
    nonBlank++;
    if (nonBlank > options.maxRequests) {
      input.destroy();
      return {
        lines: [],
        valid: 0,
        invalid: 0,
        fileError: lineError(lineNumber, 'too_many_requests', `The file has more than ${options.maxRequests} requests (batches.max_requests).`),
      };
    }
    const checked = checkLine(text, lineNumber, offset, length, seen, options);
    if (checked.kind === 'request') valid++;
    lines.push(checked);
  }
  const fileError = nonBlank === 0 ? lineError(null, 'empty_file', 'The input file has no requests.') : null;
  return { lines, valid, invalid: lines.length - valid, fileError };
}
