/**
 * The Files API through the real `chatgate serve` and the official SDK: upload, list with
 * pagination, retrieve, download, delete; a large upload streamed to disk (the server's
 * memory does not grow with it); 413 over the limit; per-project visibility.
 */
import { request as httpRequest } from 'node:http';
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const MASTER = 'sk-contract-test-key';
const MAX_BYTES = 60_000_000;
const CONFIG = `files:
  max_bytes: ${MAX_BYTES}
models:
  - name: gpt-4-turbo
    provider: mock
`;

let chatgate: RunningChatgate;
let client: OpenAI;
let scratch: string;

beforeAll(async () => {
  chatgate = await startChatgate({ config: CONFIG, masterKey: MASTER });
  client = chatgate.client();
  scratch = mkdtempSync(join(tmpdir(), 'chatgate-files-'));
});

afterAll(async () => {
  await chatgate?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

function rssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]);
}

/** A file of `size` pseudo-random bytes, written in 1 MB pieces. */
async function bigFile(name: string, size: number): Promise<string> {
  const path = join(scratch, name);
  const out = createWriteStream(path);
  const piece = Buffer.alloc(1024 * 1024);
  for (let index = 0; index < piece.length; index++) piece[index] = (index * 31 + 7) & 0xff;
  for (let written = 0; written < size; written += piece.length) {
    if (!out.write(piece.subarray(0, Math.min(piece.length, size - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return path;
}

function blobFiles(): string[] {
  return readdirSync(join(chatgate.dataDirectory, 'files'));
}

describe('Files API', () => {
  it('uploads, retrieves, downloads and deletes a file in OpenAI\'s shape', async () => {
    const content = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n';
    const created = await client.files.create({ file: await toFile(Buffer.from(content), 'requests.jsonl'), purpose: 'batch' });
    expect(created).toEqual({
      id: expect.stringMatching(/^file-[A-Za-z0-9]{24}$/),
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: expect.any(Number),
      filename: 'requests.jsonl',
      purpose: 'batch',
      status: 'processed',
      expires_at: null,
      status_details: null,
    });
    expect(Math.abs(created.created_at - Date.now() / 1000)).toBeLessThan(60);
    expect(await client.files.retrieve(created.id)).toEqual(created);
    const download = await client.files.content(created.id);
    expect(download.headers.get('content-type')).toBe('application/octet-stream');
    expect(await download.text()).toBe(content);
    expect(await client.files.delete(created.id)).toEqual({ id: created.id, object: 'file', deleted: true });
    const missing = await refusal(client.files.retrieve(created.id));
    expect(missing.status).toBe(404);
    expect(missing.message).toContain(`No such File object: ${created.id}`);
    expect((await refusal(client.files.content(created.id))).status).toBe(404);
    expect((await refusal(client.files.delete(created.id))).status).toBe(404);
    expect(blobFiles()).not.toContain(created.id);
  });

  it('lists newest first with pagination, by purpose, in either order', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      const purpose = index === 2 ? 'vision' : 'user_data';
      ids.push((await client.files.create({ file: await toFile(Buffer.from(`file ${index}`), `f${index}.txt`), purpose })).id);
    }
    const listed: string[] = [];
    for await (const file of client.files.list({ limit: 2, purpose: 'user_data' })) listed.push(file.id);
    expect(listed).toEqual([ids[4], ids[3], ids[1], ids[0]]);
    const page = await client.files.list({ limit: 2, order: 'asc', purpose: 'user_data' });
    expect(page.data.map((file) => file.id)).toEqual([ids[0], ids[1]]);
    expect(page.has_more).toBe(true);
    const after = await client.files.list({ after: ids[1]!, order: 'asc', purpose: 'user_data' });
    expect(after.data.map((file) => file.id)).toEqual([ids[3], ids[4]]);
    expect(after.has_more).toBe(false);
    expect((await client.files.list({ purpose: 'vision' })).data.map((file) => file.id)).toEqual([ids[2]]);
    expect((await refusal(client.files.list({ limit: 0 }))).status).toBe(400);
    expect((await refusal(client.files.list({ limit: 10_001 }))).status).toBe(400);
    expect((await refusal(client.files.list({ order: 'sideways' as 'asc' }))).status).toBe(400);
  });

  it('refuses uploads without a file or purpose, or with an unknown purpose, and keeps nothing of them', async () => {
    const before = blobFiles();
    const noPurpose = await refusal(client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt') } as never));
    expect(noPurpose.status).toBe(400);
    expect(noPurpose.param).toBe('purpose');
    const badPurpose = await refusal(client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'nonsense' as 'batch' }));
    expect(badPurpose.status).toBe(400);
    expect(badPurpose.param).toBe('purpose');
    const form = new FormData();
    form.set('purpose', 'batch');
    const noFile = await fetch(`${chatgate.url}/files`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: form });
    expect(noFile.status).toBe(400);
    expect((await noFile.json()).error.param).toBe('file');
    const notMultipart = await fetch(`${chatgate.url}/files`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: '{}' });
    expect(notMultipart.status).toBe(400);
    expect(blobFiles()).toEqual(before);
  });

  it('streams a 50 MB upload to disk without growing the server\'s memory, and streams it back', async () => {
    const pid = chatgate.process.pid!;
    const size = 50 * 1024 * 1024;
    const path = await bigFile('big.bin', size);
    // Warm up first: the first large upload of a process grows its heap once, by about 20 MB whatever
    // the size (measured: the same for 50 MB and 200 MB); after that, uploads add almost nothing.
    await client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const before = rssKb(pid);
    const created = await client.files.create({ file: createReadStream(path), purpose: 'fine-tune' });
    const after = rssKb(pid);
    expect(created.bytes).toBe(size);
    expect(statSync(join(chatgate.dataDirectory, 'files', created.id)).size).toBe(size);
    if (process.env.CHATGATE_TEST_VERBOSE) console.log(`RSS ${before} kB -> ${after} kB`);
    expect(after - before, `RSS grew from ${before} kB to ${after} kB`).toBeLessThan(8 * 1024);

    const download = await client.files.content(created.id);
    let received = 0;
    let matches = true;
    const expected = readFileSync(path);
    for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
      if (matches && !Buffer.from(chunk).equals(expected.subarray(received, received + chunk.byteLength))) matches = false;
      received += chunk.byteLength;
    }
    expect(received).toBe(size);
    expect(matches).toBe(true);
  }, 120_000);

  it('answers 413 for a file over files.max_bytes and keeps no partial file', async () => {
    const before = blobFiles();
    const path = await bigFile('too-big.bin', MAX_BYTES + 5 * 1024 * 1024);
    const error = await refusal(client.files.create({ file: createReadStream(path), purpose: 'batch' }));
    expect(error.status).toBe(413);
    expect(error.message).toContain(`${MAX_BYTES} bytes`);

    // Chunked (no Content-Length): refused while streaming, once the limit is passed.
    const boundary = 'chatgate-test-boundary';
    const piece = Buffer.alloc(1024 * 1024, 0x61);
    // node:http sees the early answer even while the upload is still being written (fetch may
    // instead report the closed socket, depending on timing); write errors after it are expected.
    const url = new URL(`${chatgate.url}/files`);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const upload = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          response.on('error', reject);
        },
      );
      upload.on('error', () => {}); // EPIPE / reset once the server stopped reading
      upload.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n`);
      let sent = 0;
      const writeMore = () => {
        while (sent <= MAX_BYTES + 4 * piece.length && !upload.destroyed) {
          sent += piece.length;
          if (!upload.write(piece)) {
            upload.once('drain', writeMore);
            return;
          }
        }
        if (!upload.destroyed) upload.end(`\r\n--${boundary}--\r\n`);
      };
      writeMore();
    });
    // The server answers (with Connection: close) and stops reading as soon as the limit is passed.
    expect(answer.status).toBe(413);
    expect((JSON.parse(answer.body) as { error: { code: string } }).error.code).toBe('file_too_large');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(blobFiles()).toEqual(before);
  }, 120_000);

  it('shows a project\'s files only to keys of that project', async () => {
    const createKey = async (body: Record<string, unknown>) => {
      const response = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { secret: string }).secret;
    };
    const other = chatgate.client({ apiKey: await createKey({ name: 'other', project: 'other-project' }) });
    const sameProject = chatgate.client({ apiKey: await createKey({ name: 'default one' }) });
    const mine = await client.files.create({ file: await toFile(Buffer.from('secret'), 'mine.txt'), purpose: 'assistants' });
    const theirs = await other.files.create({ file: await toFile(Buffer.from('theirs'), 'theirs.txt'), purpose: 'assistants' });

    expect((await refusal(other.files.retrieve(mine.id))).status).toBe(404);
    expect((await refusal(other.files.content(mine.id))).status).toBe(404);
    expect((await refusal(other.files.delete(mine.id))).status).toBe(404);
    expect((await other.files.list()).data.map((file) => file.id)).toEqual([theirs.id]);
    expect((await client.files.list()).data.map((file) => file.id)).not.toContain(theirs.id);
    expect((await refusal(client.files.retrieve(theirs.id))).status).toBe(404);
    expect(await sameProject.files.retrieve(mine.id)).toEqual(mine);
    expect(await client.files.retrieve(mine.id)).toEqual(mine);
  });
});
