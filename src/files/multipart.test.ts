import { describe, expect, it } from 'vitest';
import { MultipartError, MultipartParser, multipartBoundary, multipartEvents, type MultipartEvent } from './multipart.js';

const BOUNDARY = '----chatgate-boundary-1234';

function body(parts: Array<{ name: string; filename?: string; contentType?: string; data: Buffer | string }>, options: { preamble?: string; epilogue?: string } = {}): Buffer {
  const pieces: Buffer[] = [Buffer.from(options.preamble ?? '')];
  for (const part of parts) {
    let headers = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) headers += `; filename="${part.filename.replace(/"/g, '\\"')}"`;
    headers += '\r\n';
    if (part.contentType !== undefined) headers += `Content-Type: ${part.contentType}\r\n`;
    pieces.push(Buffer.from(`${headers}\r\n`), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\n${options.epilogue ?? ''}`));
  return Buffer.concat(pieces);
}

/** Collects the parts, feeding the body in the given chunk sizes. */
function parse(input: Buffer, chunkSizes: (index: number) => number): Array<{ name: string; filename: string | null; contentType: string | null; data: Buffer }> {
  const parser = new MultipartParser(BOUNDARY);
  const parts: Array<{ name: string; filename: string | null; contentType: string | null; data: Buffer }> = [];
  let chunks: Buffer[] = [];
  const handle = (event: MultipartEvent) => {
    if (event.type === 'part') {
      parts.push({ name: event.name, filename: event.filename, contentType: event.contentType, data: Buffer.alloc(0) });
      chunks = [];
    } else if (event.type === 'data') {
      chunks.push(Buffer.from(event.bytes));
    } else {
      parts.at(-1)!.data = Buffer.concat(chunks);
    }
  };
  let offset = 0;
  let index = 0;
  while (offset < input.length) {
    const size = Math.max(1, chunkSizes(index++));
    for (const event of parser.push(input.subarray(offset, offset + size))) handle(event);
    offset += size;
  }
  parser.finish();
  return parts;
}

/** Data that contains near-misses of the delimiter. */
const tricky = Buffer.concat([
  Buffer.from(`line one\r\n--${BOUNDARY.slice(0, -1)}X\r\n-- \r\n\r\n-${BOUNDARY} \r\n--${BOUNDARY.slice(0, 5)}: `),
  Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2d, 0x2d, 255, 254]),
  Buffer.from('\r\n\r\n--'),
]);

describe('multipartBoundary', () => {
  it('reads the boundary of multipart/form-data only', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('application/json')).toBeNull();
    expect(multipartBoundary('multipart/form-data')).toBeNull();
    expect(multipartBoundary(undefined)).toBeNull();
  });
});

describe('MultipartParser', () => {
  const input = body(
    [
      { name: 'purpose', data: 'batch' },
      { name: 'file', filename: 'in "put".jsonl', contentType: 'application/jsonl', data: tricky },
      { name: 'empty', data: '' },
    ],
    { preamble: 'ignored preamble\r\n', epilogue: 'ignored epilogue' },
  );
  const expected = [
    { name: 'purpose', filename: null, contentType: null, data: Buffer.from('batch') },
    { name: 'file', filename: 'in "put".jsonl', contentType: 'application/jsonl', data: tricky },
    { name: 'empty', filename: null, contentType: null, data: Buffer.alloc(0) },
  ];

  it('parses a whole body at once', () => {
    expect(parse(input, () => input.length)).toEqual(expected);
  });

  it('gives the same parts for every split point, and byte by byte', () => {
    for (let split = 1; split < input.length; split++) {
      expect(parse(input, (index) => (index === 0 ? split : input.length))).toEqual(expected);
    }
    expect(parse(input, () => 1)).toEqual(expected);
  });

  it('gives the same parts for random chunk sizes', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed);
    for (let round = 0; round < 200; round++) expect(parse(input, () => (random() % 40) + 1)).toEqual(expected);
  });

  it('streams a large part without holding it: data events stay small', () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
    const whole = body([{ name: 'file', filename: 'a.bin', data: big }]);
    const parser = new MultipartParser(BOUNDARY);
    let total = 0;
    let largest = 0;
    for (let offset = 0; offset < whole.length; offset += 65536) {
      for (const event of parser.push(whole.subarray(offset, offset + 65536))) {
        if (event.type === 'data') {
          total += event.bytes.byteLength;
          largest = Math.max(largest, event.bytes.byteLength);
        }
      }
    }
    parser.finish();
    expect(total).toBe(big.length);
    expect(largest).toBeLessThanOrEqual(65536 + 100);
  });

  it('reads filename* (RFC 5987) and unquoted parameters', () => {
    const raw = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name=file; filename="fallback.txt"; filename*=UTF-8''%C3%BCn%C3%AF.txt\r\n\r\nx\r\n--${BOUNDARY}--`,
    );
    expect(parse(raw, () => 3)).toEqual([{ name: 'file', filename: 'ünï.txt', contentType: null, data: Buffer.from('x') }]);
  });

  it('refuses malformed bodies', () => {
    expect(() => parse(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated`), () => 5)).toThrow(MultipartError);
    expect(() => parse(Buffer.from(`--${BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${BOUNDARY}--`), () => 5)).toThrow(/Content-Disposition/);
    expect(() => parse(Buffer.from(`--${BOUNDARY}XX`), () => 5)).toThrow(/line break/);
    expect(() => parse(Buffer.from(`--${BOUNDARY}\r\n${'X-Long: y\r\n'.repeat(3000)}`), () => 1000)).toThrow(/too long/);
    expect(() => parse(Buffer.from('no boundary at all'), () => 5)).toThrow(/ended before/);
  });
});

describe('multipartEvents', () => {
  it('reads a web stream and passes read errors on as they are (a client abort, not a malformed body)', async () => {
    const input = body([{ name: 'purpose', data: 'vision' }]);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(input.subarray(0, 10));
        controller.enqueue(input.subarray(10));
        controller.close();
      },
    });
    const types: string[] = [];
    for await (const event of multipartEvents(stream, BOUNDARY)) types.push(event.type);
    expect(types).toEqual(['part', 'data', 'end']);

    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(input.subarray(0, 10));
        controller.error(new Error('socket hang up'));
      },
    });
    await expect(async () => {
      for await (const event of multipartEvents(failing, BOUNDARY)) void event;
    }).rejects.toThrow('socket hang up');
  });
});
