import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppEnv } from '../app-env.js';
import type { Principal } from '../auth/principal.js';
import { createErrorHandler } from '../errors/render-error.js';
import { LocalDiskBlobStore } from '../files/blob-store.js';
import { openSqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { Store } from '../storage/spec.js';
import { filesRoutes } from './files.js';

let store: Store;
let app: Hono<AppEnv>;

beforeEach(async () => {
  const directory = mkdtempSync(join(tmpdir(), 'chatgate-files-'));
  store = openSqliteStore(join(directory, 'chatgate.db'));
  await store.migrate();
  app = new Hono<AppEnv>();
  app.onError(createErrorHandler(pino({ level: 'silent' }), 1_000_000));
  app.use('*', async (context, next) => {
    context.set('principal', { keyId: 'master', isMaster: true, isAdmin: true, project: 'default' } as Principal);
    await next();
  });
  app.route('/v1/files', filesRoutes({ files: store.files, blobs: new LocalDiskBlobStore(join(directory, 'files')), maxBytes: 1_000_000 }));
});
afterEach(() => store.close());

function upload(filename: string): Promise<Response> {
  const boundary = '----test';
  const body = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n{}\n\r\n--${boundary}--\r\n`;
  return Promise.resolve(app.request('/v1/files', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body }));
}

describe('POST /v1/files', () => {
  it('refuses a filename with a NUL character with 400 and keeps nothing (PostgreSQL cannot store it: a 500)', async () => {
    const response = await upload('a\u0000b.jsonl');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'file', code: 'invalid_value' } });
    expect(await store.files.list({ project: 'default', limit: 10 })).toEqual([]);
  });

  it('keeps other filenames as sent', async () => {
    const response = await upload('données ✓.jsonl');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ object: 'file', filename: 'données ✓.jsonl', purpose: 'batch' });
  });
});
