/**
 * Slow and abandoning clients (issue 13, item 3) against a real `chatgate serve`:
 * - headers and bodies that stop arriving are closed after the configured timeouts;
 * - a body sent slowly but steadily, for longer than the idle timeout, still succeeds;
 * - a body the client abandons is audited as a client abort (499), with no error log line;
 * - connections past `max_connections` get a clear 503 and the server still answers within
 *   the cap once they are gone.
 * Raw sockets are used so that the test controls every byte and every connection.
 */
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const MASTER = 'sk-slow-clients-master';
const HEADERS_TIMEOUT_MS = 1000;
const BODY_IDLE_MS = 1000;
const MAX_CONNECTIONS = 12;

let timeouts: RunningChatgate;
let capped: RunningChatgate;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portOf(instance: RunningChatgate): number {
  return Number(new URL(instance.url).port);
}

interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves when the server closed the connection (or it errored), with the time it took since `connectRaw`. */
  closed: Promise<number>;
}

async function connectRaw(port: number): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1' });
  const started = performance.now();
  let received = '';
  socket.setEncoding('utf8').on('data', (text: string) => (received += text));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed };
}

function write(socket: Socket, text: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(text, (error) => (error ? reject(error) : resolve())));
}

function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Bearer ${MASTER}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** One complete request on its own connection (`Connection: close`); the whole answer as text. */
async function rawExchange(port: number, method: string, path: string): Promise<string> {
  const connection = await connectRaw(port);
  await write(connection.socket, requestHead(method, path, { Connection: 'close' }));
  await connection.closed;
  return connection.received();
}

const chatBody = JSON.stringify({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: `hello ${'x'.repeat(2000)}` }], max_tokens: 5 });

const BOUNDARY = 'slowclientsboundary';
function multipartBody(fileBytes: number): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n`),
    Buffer.alloc(fileBytes, 'a'),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

interface AuditRow {
  path: string;
  status: number;
  error_code: string | null;
}

/** The audit records of a path (the writer flushes every ~100 ms: polls until `count` are there). */
async function auditOf(instance: RunningChatgate, path: string, count: number): Promise<AuditRow[]> {
  const base = instance.url.replace(/\/v1$/, '');
  let rows: AuditRow[] = [];
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(`${base}/admin/logs?path=${encodeURIComponent(path)}&limit=1000`, { headers: { authorization: `Bearer ${MASTER}` } });
    rows = ((await response.json()) as { data: AuditRow[] }).data;
    if (rows.length >= count) return rows;
    await sleep(100);
  }
  return rows;
}

/** Lines of the server's output at error level or above, and anything that is not a JSON log line or a start-up line. */
function errorLines(instance: RunningChatgate): string[] {
  return instance
    .output()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      if (!line.startsWith('{')) return /error|abort|exception|at /i.test(line);
      try {
        return (JSON.parse(line) as { level?: number }).level! >= 50;
      } catch {
        return true;
      }
    });
}

beforeAll(async () => {
  [timeouts, capped] = await Promise.all([
    startChatgate({
      masterKey: MASTER,
      config: [
        'server:',
        `  headers_timeout_ms: ${HEADERS_TIMEOUT_MS}`,
        `  body_idle_timeout_ms: ${BODY_IDLE_MS}`,
        'models:',
        '  - name: gpt-4-turbo',
        '    provider: mock',
        '',
      ].join('\n'),
    }),
    startChatgate({
      masterKey: MASTER,
      config: ['server:', `  max_connections: ${MAX_CONNECTIONS}`, 'models:', '  - name: gpt-4-turbo', '    provider: mock', ''].join('\n'),
    }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([timeouts?.stop(), capped?.stop()]);
});

describe('timeouts', () => {
  it('closes connections whose headers or body stop arriving, after the configured timeouts', async () => {
    const port = portOf(timeouts);
    const slowHeaders = await connectRaw(port);
    await write(slowHeaders.socket, 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const slowBodies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const connection = await connectRaw(port);
        await write(connection.socket, requestHead('POST', '/v1/completions', { 'Content-Type': 'application/json', 'Content-Length': chatBody.length }));
        await write(connection.socket, chatBody.slice(0, 50));
        return connection;
      }),
    );
    // Before the fix nothing closed them (no request timeout): the 15 s bound fails.
    const never = sleep(15_000).then(() => Number.POSITIVE_INFINITY);
    const headerClose = await Promise.race([slowHeaders.closed, never]);
    expect(headerClose).toBeLessThan(15_000);
    expect(slowHeaders.received()).toMatch(/^HTTP\/1\.1 408/);
    const bodyCloses = await Promise.all(slowBodies.map((connection) => Promise.race([connection.closed, never])));
    for (const elapsed of bodyCloses) {
      expect(elapsed).toBeGreaterThanOrEqual(BODY_IDLE_MS * 0.9);
      expect(elapsed).toBeLessThan(15_000);
    }
  });

  it('lets a body that arrives slowly but steadily, for longer than the idle timeout, through', async () => {
    const port = portOf(timeouts);
    // A JSON request and a file upload, each sent in pieces 150 ms apart for about 3 s (3 × the idle timeout).
    const send = async (head: string, body: Buffer): Promise<string> => {
      const connection = await connectRaw(port);
      await write(connection.socket, head);
      const pieces = 20;
      const size = Math.ceil(body.length / pieces);
      for (let offset = 0; offset < body.length; offset += size) {
        await write(connection.socket, body.subarray(offset, offset + size));
        await sleep(150);
      }
      await connection.closed;
      return connection.received();
    };
    const started = performance.now();
    const [chat, upload] = await Promise.all([
      send(requestHead('POST', '/v1/chat/completions', { 'Content-Type': 'application/json', 'Content-Length': chatBody.length, Connection: 'close' }), Buffer.from(chatBody)),
      send(
        requestHead('POST', '/v1/files', { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, 'Content-Length': multipartBody(200_000).length, Connection: 'close' }),
        multipartBody(200_000),
      ),
    ]);
    expect(performance.now() - started).toBeGreaterThan(2 * BODY_IDLE_MS);
    expect(chat).toMatch(/^HTTP\/1\.1 200/);
    expect(chat).toContain('"chat.completion"');
    expect(upload).toMatch(/^HTTP\/1\.1 200/);
    expect(upload).toContain('"object":"file"');
  });
});

describe('abandoned bodies', () => {
  it('are audited as client aborts (499), closed mid-body or left idle, JSON or multipart, with no error log line', async () => {
    const port = portOf(timeouts);
    const upload = multipartBody(100_000);
    const abandon = async (path: string, headers: Record<string, string | number>, part: Buffer | string, how: 'close' | 'idle') => {
      const connection = await connectRaw(port);
      await write(connection.socket, requestHead('POST', path, headers));
      await write(connection.socket, part);
      if (how === 'close') {
        await sleep(100);
        connection.socket.destroy();
      }
      await connection.closed;
    };
    const json = { 'Content-Type': 'application/json', 'Content-Length': chatBody.length };
    const multipart = { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, 'Content-Length': upload.length };
    await Promise.all([
      abandon('/v1/chat/completions', json, chatBody.slice(0, 100), 'close'),
      abandon('/v1/embeddings', { 'Content-Type': 'application/json', 'Content-Length': 500 }, '{"model":"text-embedding-3-small","input":"', 'idle'),
      abandon('/v1/files', multipart, upload.subarray(0, 60_000), 'close'),
      abandon('/v1/files', multipart, upload.subarray(0, 60_000), 'idle'),
    ]);
    const expected = { status: 499, error_code: 'client_closed_request' };
    const chat = await auditOf(timeouts, '/v1/chat/completions', 1);
    const embeddings = await auditOf(timeouts, '/v1/embeddings', 1);
    const files = (await auditOf(timeouts, '/v1/files', 3)).filter((row) => row.status !== 200);
    // The chat path also holds the steady upload of the test before (200).
    expect(chat.filter((row) => row.status !== 200)).toEqual([expect.objectContaining(expected)]);
    expect(embeddings).toEqual([expect.objectContaining(expected)]);
    expect(files).toEqual([expect.objectContaining(expected), expect.objectContaining(expected)]);
    // The abandoned uploads left no partial file behind.
    expect(readdirSync(join(timeouts.dataDirectory, 'files')).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
    await sleep(200);
    expect(errorLines(timeouts)).toEqual([]);
  });
});

describe('connection cap', () => {
  it('refuses connections past the cap with a 503 in OpenAI shape and Connection: close, and serves again once they are gone', async () => {
    const port = portOf(capped);
    const holders = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, async () => {
        const connection = await connectRaw(port);
        await write(connection.socket, requestHead('POST', '/v1/chat/completions', { 'Content-Type': 'application/json', 'Content-Length': chatBody.length }));
        await write(connection.socket, chatBody.slice(0, 10));
        return connection;
      }),
    );
    // Past the cap: each gets the refusal (not a reset), several at once.
    const refusals = await Promise.all(Array.from({ length: 30 }, () => rawExchange(port, 'GET', '/v1/models')));
    for (const answer of refusals) {
      expect(answer).toMatch(/^HTTP\/1\.1 503/);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: Record<string, unknown> };
      expect(body.error).toEqual({ message: expect.any(String), type: 'server_error', param: null, code: 'server_busy' });
    }
    // The held connections are still served: finish one of them.
    await write(holders[0]!.socket, chatBody.slice(10));
    for (let attempt = 0; attempt < 100 && holders[0]!.received() === ''; attempt++) await sleep(50);
    expect(holders[0]!.received()).toMatch(/^HTTP\/1\.1 200/);
    for (const holder of holders) holder.socket.destroy();
    await Promise.all(holders.map((holder) => holder.closed));
    // Within the cap again: answered.
    let answer = '';
    for (let attempt = 0; attempt < 50 && !answer.startsWith('HTTP/1.1 200'); attempt++) {
      answer = await rawExchange(port, 'GET', '/v1/models');
      if (!answer.startsWith('HTTP/1.1 200')) await sleep(100);
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    const many = await Promise.all(Array.from({ length: MAX_CONNECTIONS - 2 }, () => rawExchange(port, 'GET', '/v1/models')));
    for (const each of many) expect(each).toMatch(/^HTTP\/1\.1 200/);
    expect(errorLines(capped)).toEqual([]);
    // 30 refusals, one warning (not one line per connection).
    expect(capped.output().split('\n').filter((line) => line.includes('max_connections reached'))).toHaveLength(1);
  });
});
