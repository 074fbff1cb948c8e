import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, sidecarPath } from './download.js';

const BODY = Buffer.from('GGUF'.padEnd(10_000, 'x'));
const SHA = createHash('sha256').update(BODY).digest('hex');
let server: Server;
let url = '';
const seen: Array<{ range?: string | undefined; ifRange?: string | undefined }> = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push({ range: request.headers.range, ifRange: request.headers['if-range'] as string | undefined });
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const etag = `"${SHA}"`;
    if (range && request.headers['if-range'] === etag) {
      const start = Number(range[1]);
      if (start >= BODY.length) return void response.writeHead(416, { 'content-range': `bytes */${BODY.length}` }).end();
      response.writeHead(206, { etag, 'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}`, 'content-length': BODY.length - start });
      return void response.end(BODY.subarray(start));
    }
    response.writeHead(200, { etag, 'content-length': BODY.length });
    response.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m.gguf`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

function part(content: Buffer, etag: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chatgate-download-')), 'm.gguf.part');
  writeFileSync(path, content);
  writeFileSync(sidecarPath(path), JSON.stringify({ url, etag, total: BODY.length }));
  return path;
}

describe('download', () => {
  it('resumes with Range and If-Range, hashing the kept bytes too; a 64-hex ETag is the announced sha256', async () => {
    const partPath = part(BODY.subarray(0, 4000), `"${SHA}"`);
    seen.length = 0;
    const result = await download({ url, partPath, environment: {} });
    expect(seen).toEqual([{ range: 'bytes=4000-', ifRange: `"${SHA}"` }]);
    expect(result).toEqual({ bytes: BODY.length, sha256: SHA, remoteSha256: SHA });
    expect(readFileSync(partPath).equals(BODY)).toBe(true);
  });

  it('starts over when the remote file changed (If-Range does not match: 200)', async () => {
    const partPath = part(Buffer.from('stale bytes of an older version'), '"old"');
    const result = await download({ url, partPath, environment: {} });
    expect(result.sha256).toBe(SHA);
    expect(readFileSync(partPath).equals(BODY)).toBe(true);
  });

  it('treats a 416 for a complete .part as done', async () => {
    const partPath = part(BODY, `"${SHA}"`);
    const result = await download({ url, partPath, environment: {} });
    expect(result).toEqual({ bytes: BODY.length, sha256: SHA, remoteSha256: null });
  });

  it('reports an unreachable server', async () => {
    const partPath = join(mkdtempSync(join(tmpdir(), 'chatgate-download-')), 'x.part');
    await expect(download({ url: 'http://127.0.0.1:1/x.gguf', partPath, environment: {}, retries: 0 })).rejects.toThrow(/cannot reach/);
  });
});
