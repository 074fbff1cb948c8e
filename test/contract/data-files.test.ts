/**
 * What Chatgate keeps on disk is private, and its token signing key is not in it: after a
 * start on a data directory left by an older version (0755, a 0644 database, a crashed
 * upload's `.tmp-` file) and some traffic (keys, tokens, chat, an upload), every folder of
 * the data directory and of an outside `files.directory` is 0700, every file 0600; the
 * leftover is gone; the database holds nothing that signs a token, and a token correctly
 * signed but with a forged expiry is refused with 401 in OpenAI's shape.
 */
import Database from 'better-sqlite3';
import { createHmac } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveSigningKey, SIGNING_SALT_KEY } from '../../src/keys/tokens.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const MASTER = 'sk-contract-data-files';
const root = mkdtempSync(join(tmpdir(), 'chatgate-data-files-'));
const dataDirectory = join(root, 'data');
const filesDirectory = join(root, 'uploads');
const crashed = '.tmp-file-crashed00000000000000000-0a1b2c3d4e5f';

let chatgate: RunningChatgate;
let admin: string;

/** Every folder and file under `path` (included) with its permission bits. */
function modes(path: string): Map<string, number> {
  const found = new Map<string, number>();
  const stats = lstatSync(path);
  found.set(path, stats.mode & 0o777);
  if (stats.isDirectory()) for (const name of readdirSync(path)) for (const [child, mode] of modes(join(path, name))) found.set(child, mode);
  return found;
}

beforeAll(async () => {
  // What an older version (or a copy by an operator with umask 022) left behind.
  mkdirSync(filesDirectory, { recursive: true });
  mkdirSync(dataDirectory, { recursive: true });
  chmodSync(dataDirectory, 0o755);
  chmodSync(filesDirectory, 0o755);
  writeFileSync(join(dataDirectory, 'notes.txt'), 'an old file\n', { mode: 0o644 });
  writeFileSync(join(filesDirectory, crashed), 'half of an upload a crash interrupted');
  const longAgo = (Date.now() - 3 * 3600_000) / 1000;
  utimesSync(join(filesDirectory, crashed), longAgo, longAgo);
  chatgate = await startChatgate({
    masterKey: MASTER,
    dataDirectory,
    config: `models:\n  - name: gpt-4-turbo\n    provider: mock\nfiles:\n  directory: ${JSON.stringify(filesDirectory)}\n`,
  });
  admin = chatgate.url.replace(/\/v1$/, '/admin');
});

afterAll(async () => {
  await chatgate?.stop();
});

async function post(url: string, key: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('data files', () => {
  it('are private (folders 0700, files 0600) after start and traffic, and a crashed upload\'s leftover is gone', async () => {
    const key = await post(`${admin}/keys`, MASTER, { name: 'modes' });
    expect(key.status).toBe(201);
    const token = await post(`${chatgate.url}/tokens`, key.json.secret as string, { expires_in_minutes: 5 });
    expect(token.status).toBe(201);
    const client = chatgate.client({ apiKey: token.json.token as string });
    await client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'Hello' }] });
    const uploaded = await chatgate.client().files.create({ file: await toFile(Buffer.from('{"a":1}\n'), 'data.jsonl'), purpose: 'fine-tune' });
    expect(uploaded.bytes).toBe(8);

    const found = new Map([...modes(dataDirectory), ...modes(filesDirectory)]);
    const names = [...found.keys()].map((path) => path.slice(root.length + 1));
    expect(names).toEqual(expect.arrayContaining(['data/chatgate.db', 'data/chatgate.db-wal', 'data/chatgate.db-shm', 'data/notes.txt', `uploads/${uploaded.id}`]));
    expect(names).not.toContain(`uploads/${crashed}`);
    for (const [path, mode] of found) {
      const expected = lstatSync(path).isDirectory() ? 0o700 : 0o600;
      expect(mode.toString(8), path).toBe(expected.toString(8));
    }
  });

  it('keep no value that signs tokens, and a well-signed token with a forged expiry is refused', async () => {
    const key = await post(`${admin}/keys`, MASTER, { name: 'forgery' });
    const minted = await post(`${chatgate.url}/tokens`, key.json.secret as string, { expires_in_minutes: 5 });
    const [body, signature] = (minted.json.token as string).slice('cgt_'.length).split('.') as [string, string];
    const database = new Database(join(dataDirectory, 'chatgate.db'), { readonly: true, fileMustExist: true });
    let rows: Array<{ key: string; value: string }>;
    try {
      rows = database.prepare('SELECT key, value FROM metadata').all() as Array<{ key: string; value: string }>;
    } finally {
      database.close();
    }
    for (const { key: name, value } of rows) {
      for (const secret of [Buffer.from(value, 'base64url'), Buffer.from(value, 'utf8')]) {
        expect(createHmac('sha256', secret).update(body).digest('base64url'), `metadata ${name}`).not.toBe(signature);
      }
    }

    // Whoever holds the signing key (here: master key and salt) still cannot make a token outlive a day.
    const salt = rows.find((row) => row.key === SIGNING_SALT_KEY)?.value;
    expect(salt).toBeTruthy();
    const signingKey = deriveSigningKey(MASTER, Buffer.from(salt!, 'base64url'));
    const iat = Math.floor(Date.now() / 1000);
    const payload = { v: 1, jti: 'tok_forgedforgedforg', kid: key.json.id as string, iat, exp: Math.floor(Date.UTC(2100, 0, 1) / 1000) };
    const forgedBody = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const sign = (text: string) => createHmac('sha256', signingKey).update(text).digest('base64url');
    expect(sign(body)).toBe(signature); // the key derived here is the server's
    const forged = `cgt_${forgedBody}.${sign(forgedBody)}`;

    const refused = await chatgate
      .client({ apiKey: forged })
      .chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'Hello' }] })
      .then(() => null, (error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    const error = refused as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(error.status).toBe(401);
    expect(error.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null });
    expect(typeof (error.error as { message?: unknown }).message).toBe('string');
  });
});
