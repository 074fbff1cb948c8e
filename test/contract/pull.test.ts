/**
 * `chatgate pull` and `chatgate models` as a user runs them (the built bin), against a
 * loopback HTTP server serving a generated tiny GGUF: plain URLs, the Hugging Face form
 * (HF_ENDPOINT, a redirect to a "CDN" with x-linked-etag), resume after a cut connection,
 * sha256 mismatch, 404, registration in a commented config that `serve` then serves.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHATGATE_BIN, startChatgate } from '../support/start-chatgate.js';
import { buildTinyGguf } from '../support/tiny-gguf.js';

const MODEL = buildTinyGguf({ seed: 7 });
const MODEL_SHA256 = createHash('sha256').update(MODEL).digest('hex');
const TOKEN = 'hf_secret_token_never_printed';

interface Logged {
  method: string;
  url: string;
  range: string | undefined;
  ifRange: string | undefined;
  authorization: string | undefined;
}

const root = mkdtempSync(join(tmpdir(), 'chatgate-pull-'));
let server: Server;
let base = '';
const requests: Logged[] = [];
let flakyCuts = 0;

function serveBytes(request: IncomingMessage, response: ServerResponse, body: Buffer, options: { etag?: string; cutAfter?: number } = {}): void {
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' };
  if (options.etag) headers.etag = options.etag;
  let start = 0;
  let status = 200;
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
  const ifRange = request.headers['if-range'];
  if (range && (!ifRange || ifRange === options.etag || ifRange === headers['last-modified'])) {
    start = Number(range[1]);
    if (start >= body.length) {
      response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  }
  headers['content-length'] = body.length - start;
  response.writeHead(status, headers);
  if (request.method === 'HEAD') return void response.end();
  if (options.cutAfter !== undefined) {
    // Send part of the body, then drop the connection.
    response.write(body.subarray(start, start + options.cutAfter), () => setTimeout(() => response.socket?.destroy(), 50));
    return;
  }
  response.end(body.subarray(start));
}

function handle(request: IncomingMessage, response: ServerResponse): void {
  const url = request.url ?? '/';
  requests.push({
    method: request.method ?? 'GET',
    url,
    range: request.headers.range,
    ifRange: request.headers['if-range'] as string | undefined,
    authorization: request.headers.authorization,
  });
  if (url === '/files/tiny.gguf') return serveBytes(request, response, MODEL, { etag: '"v1-tiny"' });
  if (url === '/flaky/tiny-flaky.gguf') {
    const cut = request.method === 'GET' && flakyCuts++ === 0;
    return serveBytes(request, response, MODEL, { etag: '"v1-flaky"', ...(cut ? { cutAfter: Math.floor(MODEL.length / 3) } : {}) });
  }
  if (url === '/flaky2/tiny-cut.gguf') {
    const cut = request.method === 'GET' && !request.headers.range;
    return serveBytes(request, response, MODEL, { etag: '"v1-cut"', ...(cut ? { cutAfter: Math.floor(MODEL.length / 2) } : {}) });
  }
  if (url === '/files/not-a-model.gguf') return serveBytes(request, response, Buffer.from('<html>Sign in</html>'.repeat(50)));
  if (url === '/hf/acme/tiny-GGUF/resolve/main/tiny-Q8_0.gguf') {
    response.writeHead(302, { location: `${base}/cdn/blob/tiny-Q8_0.gguf?signed=1`, 'x-linked-etag': `"${MODEL_SHA256}"`, 'x-linked-size': MODEL.length, 'content-length': 0 });
    return void response.end();
  }
  if (url === '/hf/acme/tiny-GGUF/resolve/main/bad-sha.gguf') {
    response.writeHead(302, { location: `${base}/cdn/blob/bad-sha.gguf`, 'x-linked-etag': `"${'0'.repeat(64)}"`, 'content-length': 0 });
    return void response.end();
  }
  if (url.startsWith('/cdn/blob/')) return serveBytes(request, response, MODEL, { etag: '"cdn-etag"' });
  if (url === '/hf/api/models/acme/tiny-GGUF/tree/main?recursive=true') {
    response.writeHead(200, { 'content-type': 'application/json' });
    return void response.end(JSON.stringify([{ type: 'file', path: 'README.md' }, { type: 'file', path: 'tiny-Q8_0.gguf' }]));
  }
  response.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI asynchronously (the loopback server lives in this process). */
function runCli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  return new Promise((resolveResult, rejectResult) => {
    const environment = { ...process.env, HF_ENDPOINT: `${base}/hf`, HF_TOKEN: undefined, CHATGATE_DATA_DIR: undefined, ...options.env };
    const child = spawn(process.execPath, [CHATGATE_BIN, ...args], { cwd: options.cwd ?? root, env: environment as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', rejectResult);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveResult({ code, stdout, stderr });
    });
  });
}

function freshDirectory(name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolveListening) => server.listen(0, '127.0.0.1', resolveListening));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolveClosed) => server.close(resolveClosed));
  rmSync(root, { recursive: true, force: true });
});

describe('chatgate pull', { timeout: 120_000 }, () => {
  it('downloads a plain URL into the models folder, prints its sha256 and registers it', async () => {
    const directory = freshDirectory('plain');
    const result = await runCli(['pull', `${base}/files/tiny.gguf`, '--models-dir', 'models', '--config', 'chatgate.yaml'], { cwd: directory });
    expect(result.stderr).not.toMatch(/\bat .+\.js:\d+/);
    expect(result.code).toBe(0);
    const path = join(directory, 'models', 'tiny.gguf');
    expect(readFileSync(path).equals(MODEL)).toBe(true);
    expect(result.stdout).toContain(`sha256: ${MODEL_SHA256}`);
    expect(readdirSync(join(directory, 'models'))).toEqual(['tiny.gguf']);
    const config = parseDocument(readFileSync(join(directory, 'chatgate.yaml'), 'utf8')).toJS() as { models: unknown[] };
    expect(config.models).toEqual([{ name: 'tiny', provider: 'llama-cpp', path }]);
    // Not a TTY: progress as lines, ending at 100 %.
    expect(result.stderr).toContain('100%');

    // Again: already there, nothing downloaded, registration unchanged.
    const before = requests.filter((request) => request.method === 'GET').length;
    const again = await runCli(['pull', `${base}/files/tiny.gguf`, '--models-dir', 'models'], { cwd: directory });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already downloaded');
    expect(again.stdout).toContain('already in');
    expect(requests.filter((request) => request.method === 'GET').length).toBe(before);
  });

  it('uses the data dir by default and honours --no-register and --quiet', async () => {
    const directory = freshDirectory('datadir');
    const result = await runCli(['pull', `${base}/files/tiny.gguf`, '--data-dir', 'data', '--no-register', '--quiet'], { cwd: directory });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(readFileSync(join(directory, 'data', 'models', 'tiny.gguf')).equals(MODEL)).toBe(true);
    expect(existsSync(join(directory, 'chatgate.yaml'))).toBe(false);
  });

  it('resolves the Hugging Face form through HF_ENDPOINT, follows the redirect, verifies x-linked-etag, keeps HF_TOKEN to the hub', async () => {
    const directory = freshDirectory('hf');
    const result = await runCli(['pull', 'acme/tiny-GGUF/tiny-Q8_0.gguf', '--models-dir', 'models', '--no-register'], {
      cwd: directory,
      env: { HF_TOKEN: TOKEN },
    });
    expect(result.code).toBe(0);
    expect(readFileSync(join(directory, 'models', 'tiny-Q8_0.gguf')).equals(MODEL)).toBe(true);
    expect(result.stderr).toContain('sha256 verified');
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    const hub = requests.find((request) => request.url === '/hf/acme/tiny-GGUF/resolve/main/tiny-Q8_0.gguf');
    expect(hub?.authorization).toBe(`Bearer ${TOKEN}`);
    const cdn = requests.find((request) => request.url.startsWith('/cdn/blob/tiny-Q8_0.gguf'));
    expect(cdn).toBeDefined();

    // hf: prefix and @revision resolve to the same file (already there: a HEAD check only).
    const again = await runCli(['pull', 'hf:acme/tiny-GGUF/tiny-Q8_0.gguf@main', '--models-dir', 'models', '--no-register'], { cwd: directory });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already downloaded');
  });

  it('says a file name is needed for a bare repo, listing its GGUF files', async () => {
    const result = await runCli(['pull', 'acme/tiny-GGUF', '--models-dir', freshDirectory('repo')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('names a repo but no file');
    expect(result.stderr).toContain('acme/tiny-GGUF/tiny-Q8_0.gguf');
    expect(result.stderr).not.toMatch(/\bat .+\.js:\d+/);
  });

  it('resumes after the server cuts the connection mid-body (retrying by itself)', async () => {
    const directory = freshDirectory('resume');
    const result = await runCli(['pull', `${base}/flaky/tiny-flaky.gguf`, '--models-dir', 'models', '--no-register'], { cwd: directory });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('retrying');
    const ranged = requests.filter((request) => request.url === '/flaky/tiny-flaky.gguf' && request.range);
    expect(ranged.length).toBe(1);
    expect(ranged[0]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(ranged[0]!.ifRange).toBe('"v1-flaky"');
    expect(readFileSync(join(directory, 'models', 'tiny-flaky.gguf')).equals(MODEL)).toBe(true);
  });

  it('keeps the .part when interrupted and resumes it on the next pull', async () => {
    const directory = freshDirectory('resume2');
    const first = await runCli(['pull', `${base}/flaky2/tiny-cut.gguf`, '--models-dir', 'models', '--no-register', '--retries', '0'], { cwd: directory });
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('download interrupted');
    expect(first.stderr).not.toMatch(/\bat .+\.js:\d+/);
    expect(existsSync(join(directory, 'models', 'tiny-cut.gguf'))).toBe(false);
    expect(existsSync(join(directory, 'models', 'tiny-cut.gguf.part'))).toBe(true);

    const listing = await runCli(['models', '--models-dir', 'models', '--json'], { cwd: directory });
    const parsed = JSON.parse(listing.stdout) as { incomplete: Array<{ file: string; total: number }> };
    expect(parsed.incomplete).toEqual([expect.objectContaining({ file: 'tiny-cut.gguf.part', total: MODEL.length })]);

    const second = await runCli(['pull', `${base}/flaky2/tiny-cut.gguf`, '--models-dir', 'models', '--no-register'], { cwd: directory });
    expect(second.code).toBe(0);
    const ranged = requests.filter((request) => request.url === '/flaky2/tiny-cut.gguf' && request.range);
    expect(ranged.length).toBe(1);
    expect(readFileSync(join(directory, 'models', 'tiny-cut.gguf')).equals(MODEL)).toBe(true);
    expect(readdirSync(join(directory, 'models'))).toEqual(['tiny-cut.gguf']);
  });

  it('fails on a sha256 mismatch (given or announced) and leaves no file', async () => {
    const directory = freshDirectory('sha');
    const given = await runCli(['pull', `${base}/files/tiny.gguf`, '--models-dir', 'models', '--sha256', 'ab'.repeat(32)], { cwd: directory });
    expect(given.code).toBe(1);
    expect(given.stderr).toContain('sha256 mismatch');
    expect(given.stderr).not.toMatch(/\bat .+\.js:\d+/);
    const announced = await runCli(['pull', 'acme/tiny-GGUF/bad-sha.gguf', '--models-dir', 'models'], { cwd: directory });
    expect(announced.code).toBe(1);
    expect(announced.stderr).toContain('sha256 mismatch');
    expect(readdirSync(join(directory, 'models'))).toEqual([]);
    expect(existsSync(join(directory, 'chatgate.yaml'))).toBe(false);
  });

  it('fails clearly on 404, a non-GGUF file, a bad source and a bad --sha256', async () => {
    const directory = freshDirectory('errors');
    const missing = await runCli(['pull', `${base}/files/nothing.gguf`, '--models-dir', 'models'], { cwd: directory });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`not found: ${base}/files/nothing.gguf`);
    expect(missing.stderr).not.toMatch(/\bat .+\.js:\d+/);

    const html = await runCli(['pull', `${base}/files/not-a-model.gguf`, '--models-dir', 'models'], { cwd: directory });
    expect(html.code).toBe(1);
    expect(html.stderr).toContain('not a GGUF file');
    expect(readdirSync(join(directory, 'models'))).toEqual([]);

    const bad = await runCli(['pull', 'not a source'], { cwd: directory });
    expect(bad.code).toBe(2);
    const badSha = await runCli(['pull', `${base}/files/tiny.gguf`, '--sha256', 'xyz'], { cwd: directory });
    expect(badSha.code).toBe(2);
    expect(badSha.stderr).toContain('--sha256');
    const refused = await runCli(['pull', 'http://127.0.0.1:1/x.gguf', '--models-dir', 'models', '--retries', '0'], { cwd: directory });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('cannot reach');
  });
});

describe('a pulled model', { timeout: 180_000 }, () => {
  it('is registered in a commented config (comments kept) and served by chatgate serve', async () => {
    const directory = freshDirectory('serve');
    const configPath = join(directory, 'chatgate.yaml');
    writeFileSync(
      configPath,
      [
        '# My Chatgate setup',
        'log_level: warn   # quiet please',
        '',
        'models:',
        '  # the mock, for tests',
        '  - name: fake',
        '    provider: mock',
        '',
      ].join('\n'),
    );
    const result = await runCli(['pull', `${base}/files/tiny.gguf`, '--models-dir', 'models', '--name', 'tiny-local'], { cwd: directory });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Added the model 'tiny-local'");
    const text = readFileSync(configPath, 'utf8');
    expect(text).toContain('# My Chatgate setup');
    expect(text).toContain('# quiet please');
    expect(text).toContain('# the mock, for tests');
    const modelPath = join(directory, 'models', 'tiny.gguf');
    expect((parseDocument(text).toJS() as { models: unknown[] }).models).toEqual([
      { name: 'fake', provider: 'mock' },
      { name: 'tiny-local', provider: 'llama-cpp', path: modelPath },
    ]);

    // Same name, another file: refused without --force.
    const clash = await runCli(['pull', `${base}/files/tiny.gguf`, '--models-dir', 'other', '--name', 'tiny-local'], { cwd: directory });
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain("a model named 'tiny-local' already exists");

    const listing = await runCli(['models', '--models-dir', 'models'], { cwd: directory });
    expect(listing.code).toBe(0);
    expect(listing.stdout).toMatch(/tiny\.gguf\s+\S+ [KM]B\s+llama\s+\S+\s+F32\s+256\s+tiny-local/);
    const json = JSON.parse((await runCli(['models', '--models-dir', 'models', '--json'], { cwd: directory })).stdout) as {
      files: Array<{ file: string; size: number; used_by: string[]; gguf: { architecture: string; contextLength: number; parameters: number } }>;
      missing: unknown[];
    };
    expect(json.files).toHaveLength(1);
    expect(json.files[0]).toMatchObject({ file: 'tiny.gguf', size: MODEL.length, used_by: ['tiny-local'], gguf: { architecture: 'llama', contextLength: 256 } });
    expect(json.files[0]!.gguf.parameters).toBeGreaterThan(10_000);
    expect(json.missing).toEqual([]);

    // Serve it (CPU only, one thread, small context, for the test machine).
    const document = parseDocument(text);
    const entry = (document.get('models') as YAMLSeq<YAMLMap>).items[1]!;
    entry.set('threads', 1);
    entry.set('gpu_layers', 0);
    entry.set('context_size', 256);
    entry.set('parallel', 1);
    const chatgate = await startChatgate({ config: String(document) });
    try {
      const completion = await chatgate.client().chat.completions.create({
        model: 'tiny-local',
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 2,
      });
      expect(completion.model).toBe('tiny-local');
      expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(2);
    } finally {
      await chatgate.stop();
    }
  });

  it('models lists configured models whose file is missing', async () => {
    const directory = freshDirectory('missing');
    writeFileSync(join(directory, 'chatgate.yaml'), 'models:\n  - name: gone\n    provider: llama-cpp\n    path: ./models/gone.gguf\n');
    const text = await runCli(['models', '--models-dir', 'models'], { cwd: directory });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('No .gguf files.');
    expect(text.stdout).toContain('whose file is missing');
    expect(text.stdout).toContain(`gone -> ${join(directory, 'models', 'gone.gguf')}`);
    const json = JSON.parse((await runCli(['models', '--models-dir', 'models', '--json'], { cwd: directory })).stdout) as { missing: unknown[] };
    expect(json.missing).toEqual([{ name: 'gone', path: join(directory, 'models', 'gone.gguf') }]);
  });
});
