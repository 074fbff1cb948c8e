/**
 * A small streaming parser for `multipart/form-data` (RFC 7578): it never holds a part
 * whole in memory. Feed it the body chunk by chunk with `push()`; each call returns the
 * events the chunk completed, in order (a part's headers, pieces of its body, its end).
 * The caller handles them (e.g. writes file bytes to disk) before pushing the next chunk,
 * which gives back-pressure for free. A delimiter may be split across chunks anywhere.
 *
 * `multipartEvents()` wraps it as an async generator over a web ReadableStream.
 */

export type MultipartEvent =
  | { type: 'part'; name: string; filename: string | null; contentType: string | null }
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'end' };

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

/** The boundary of a `multipart/form-data` content type, or null when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (contentType === undefined) return null;
  const [type, ...parameters] = contentType.split(';');
  if (type?.trim().toLowerCase() !== 'multipart/form-data') return null;
  for (const parameter of parameters) {
    const match = /^\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))\s*$/i.exec(parameter);
    const boundary = match?.[1] ?? match?.[2];
    if (boundary !== undefined && boundary.length >= 1 && boundary.length <= 70) return boundary;
  }
  return null;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

type State = 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'done';

/** A parameter of a Content-Disposition header (`name="file"`, `filename="a b.jsonl"`, `filename*=UTF-8''…`). */
function dispositionParameter(header: string, name: string): string | null {
  const extended = new RegExp(`;\\s*${name}\\*\\s*=\\s*([^']*)'[^']*'([^;]*)`, 'i').exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[2]!.trim());
    } catch {
      /* fall back to the plain parameter */
    }
  }
  const quoted = new RegExp(`;\\s*${name}\\s*=\\s*"((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(header);
  if (quoted) return quoted[1]!.replace(/\\(.)/g, '$1');
  const token = new RegExp(`;\\s*${name}\\s*=\\s*([^;\\s]+)`, 'i').exec(header);
  return token ? token[1]! : null;
}

export class MultipartParser {
  private readonly delimiter: Buffer;
  private buffer: Buffer;
  private state: State = 'preamble';

  constructor(boundary: string) {
    // The body starts with `--boundary`; prefixing a CRLF lets one search find every delimiter.
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    this.buffer = Buffer.from(CRLF);
  }

  /** True once the closing delimiter was seen. */
  get finished(): boolean {
    return this.state === 'done';
  }

  push(chunk: Uint8Array): MultipartEvent[] {
    if (this.state === 'done') return [];
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const events: MultipartEvent[] = [];
    if (this.state === 'body' && this.buffer.length < this.delimiter.length && view.length >= this.delimiter.length - 1) {
      // The usual case while streaming a part: only the kept tail (shorter than a delimiter) is
      // left. When no delimiter starts inside it, it is data, and the chunk is used without copying.
      const junction = Buffer.concat([this.buffer, view.subarray(0, this.delimiter.length - 1)]);
      if (junction.indexOf(this.delimiter) < 0) {
        if (this.buffer.length > 0) events.push({ type: 'data', bytes: this.buffer });
        this.buffer = Buffer.alloc(0);
      }
    }
    this.buffer = this.buffer.length === 0 ? view : Buffer.concat([this.buffer, view]);
    for (;;) {
      if (this.state === 'preamble') {
        const index = this.buffer.indexOf(this.delimiter);
        if (index < 0) {
          // Keep what could be the start of a delimiter.
          this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - this.delimiter.length + 1));
          return events;
        }
        this.buffer = this.buffer.subarray(index + this.delimiter.length);
        this.state = 'after-delimiter';
      } else if (this.state === 'after-delimiter') {
        // Optional transport padding, then CRLF (a part follows) or `--` (the end).
        let offset = 0;
        while (offset < this.buffer.length && (this.buffer[offset] === 0x20 || this.buffer[offset] === 0x09)) offset += 1;
        if (offset > 256) throw new MultipartError('Malformed multipart body: padding after a boundary is too long.');
        if (this.buffer.length < offset + 2) return events;
        const first = this.buffer[offset];
        const second = this.buffer[offset + 1];
        if (first === 0x2d && second === 0x2d) {
          this.state = 'done';
          this.buffer = Buffer.alloc(0);
          return events;
        }
        if (first !== 0x0d || second !== 0x0a) throw new MultipartError('Malformed multipart body: a boundary is not followed by a line break.');
        this.buffer = this.buffer.subarray(offset + 2);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        // A part without headers starts with the empty line at once.
        if (this.buffer.length >= 2 && this.buffer[0] === 0x0d && this.buffer[1] === 0x0a) {
          throw new MultipartError('Malformed multipart body: a part has no Content-Disposition header.');
        }
        const index = this.buffer.indexOf(HEADER_END);
        if (index < 0) {
          if (this.buffer.length > MAX_HEADER_BYTES) throw new MultipartError('Malformed multipart body: part headers are too long.');
          return events;
        }
        events.push(this.parseHeaders(this.buffer.subarray(0, index).toString('utf8')));
        this.buffer = this.buffer.subarray(index + HEADER_END.length);
        this.state = 'body';
      } else if (this.state === 'body') {
        const index = this.buffer.indexOf(this.delimiter);
        if (index < 0) {
          const keep = this.delimiter.length - 1;
          if (this.buffer.length > keep) {
            events.push({ type: 'data', bytes: this.buffer.subarray(0, this.buffer.length - keep) });
            this.buffer = Buffer.from(this.buffer.subarray(this.buffer.length - keep));
          }
          return events;
        }
        if (index > 0) events.push({ type: 'data', bytes: this.buffer.subarray(0, index) });
        events.push({ type: 'end' });
        this.buffer = this.buffer.subarray(index + this.delimiter.length);
        this.state = 'after-delimiter';
      } else {
        return events;
      }
    }
  }

  /** Call at the end of the body: throws when it ended before the closing delimiter. */
  finish(): void {
    if (this.state !== 'done') throw new MultipartError('Malformed multipart body: it ended before the closing boundary.');
  }

  private parseHeaders(text: string): MultipartEvent {
    let disposition: string | null = null;
    let contentType: string | null = null;
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-disposition') disposition = value;
      else if (name === 'content-type') contentType = value;
    }
    if (disposition === null || !/^form-data\b/i.test(disposition)) {
      throw new MultipartError('Malformed multipart body: a part has no Content-Disposition: form-data header.');
    }
    const name = dispositionParameter(disposition, 'name');
    if (name === null) throw new MultipartError('Malformed multipart body: a part has no name.');
    return { type: 'part', name, filename: dispositionParameter(disposition, 'filename'), contentType };
  }
}

/** The events of a multipart body read from a stream, one chunk at a time. */
export async function* multipartEvents(body: ReadableStream<Uint8Array>, boundary: string): AsyncGenerator<MultipartEvent, void, undefined> {
  const parser = new MultipartParser(boundary);
  const reader = body.getReader();
  try {
    for (;;) {
      // A read error (the connection closed mid-body) is passed on as is: the body is not
      // malformed, the client went away (the error handler records a client abort).
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(value);
      if (parser.finished) break;
    }
    parser.finish();
  } finally {
    reader.releaseLock();
  }
}
