/**
 * Splits a JSONL file into numbered lines without holding the file in memory: the source is
 * the whole file (bytes or text), a stream of chunks of it (a `Readable` or any
 * AsyncIterable of Buffers/strings, split on "\n" at the byte level so a multi-byte character
 * across chunks is fine), or an explicit list of lines (`{ lines }`). Only one line is held
 * at a time. A trailing "\r" is dropped (CRLF files), as is a UTF-8 BOM on the first line;
 * a line that is not valid UTF-8 comes out with `text: null`.
 */

export type DatasetSource =
  | Uint8Array
  | string
  | AsyncIterable<Uint8Array | string>
  | { lines: AsyncIterable<string> | Iterable<string> };

export interface NumberedLine {
  /** 1-based. */
  number: number;
  /** The line without its line break; null when it is not valid UTF-8. */
  text: string | null;
}

const NEWLINE = 0x0a;

function decodeLine(bytes: Uint8Array, first: boolean): string | null {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
  if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

async function* chunksOf(source: Exclude<DatasetSource, { lines: unknown }>): AsyncGenerator<Uint8Array> {
  if (typeof source === 'string') yield Buffer.from(source, 'utf8');
  else if (source instanceof Uint8Array) yield source;
  else for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

async function* splitChunks(source: Exclude<DatasetSource, { lines: unknown }>): AsyncGenerator<NumberedLine> {
  let pending: Uint8Array[] = [];
  let number = 0;
  const take = (tail: Uint8Array): NumberedLine => {
    const bytes = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
    pending = [];
    number++;
    return { number, text: decodeLine(bytes, number === 1) };
  };
  for await (const chunk of chunksOf(source)) {
    let start = 0;
    for (let index = chunk.indexOf(NEWLINE); index !== -1; index = chunk.indexOf(NEWLINE, start)) {
      yield take(chunk.subarray(start, index));
      start = index + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  // A final line without "\n" (a file ending in "\n" has no such line).
  if (pending.length > 0) yield take(new Uint8Array(0));
}

async function* numberLines(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<NumberedLine> {
  let number = 0;
  for await (const line of lines) {
    number++;
    let text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (number === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    yield { number, text };
  }
}

/** The source's lines, in order, numbered from 1. */
export function readLines(source: DatasetSource): AsyncGenerator<NumberedLine> {
  if (typeof source === 'object' && 'lines' in source && !(source instanceof Uint8Array)) return numberLines(source.lines);
  return splitChunks(source);
}

/** Whether the line counts as blank (only whitespace). */
export function isBlank(text: string | null): boolean {
  return text !== null && text.trim() === '';
}
