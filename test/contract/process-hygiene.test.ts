/**
 * What an operator sees of a running Chatgate: no process warning (an EventTarget or
 * MaxListeners leak, an unhandled rejection) on the built-in defaults after the batch
 * worker has looked for work a dozen times; no upstream password in the start-up lines;
 * and a second server on a port in use ends at once, non-zero, saying why.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHATGATE_BIN, startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

/** Lines of a process warning (Node prints `(node:PID) …Warning: …`) or an unhandled error. */
const WARNING = /Warning|MaxListeners|memory leak|Unhandled/;
/** The batch worker looks for running batches every second: a leak per look warns after ten. */
const WATCH_MS = 13_000;

let defaults: RunningChatgate;
let upstreamWithPassword: RunningChatgate;

beforeAll(async () => {
  [defaults, upstreamWithPassword] = await Promise.all([
    startChatgate(),
    startChatgate({
      config: ['models:', '  - name: behind-proxy', '    provider: openai-compatible', '    base_url: http://proxyuser:hunter2pw@127.0.0.1:9/v1', '    api_key: sk-upstream-unused', ''].join('\n'),
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([defaults?.stop(), upstreamWithPassword?.stop()]);
});

describe.concurrent('a running server', () => {
  it(
    'prints no process warning on the built-in defaults, with traffic, for longer than the leak took to show',
    async () => {
      const client = defaults.client();
      const model = (await client.models.list()).data[0]!.id;
      const started = Date.now();
      while (Date.now() - started < WATCH_MS) {
        await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }] });
        await client.models.list();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(defaults.process.exitCode).toBeNull();
      const warnings = defaults.output().split('\n').filter((line) => WARNING.test(line));
      expect(warnings).toEqual([]);
    },
    WATCH_MS + 20_000,
  );

  it('masks an upstream base_url\'s password in its start-up lines', () => {
    const output = upstreamWithPassword.output();
    expect(output).toContain('behind-proxy -> openai-compatible http://proxyuser:***@127.0.0.1:9/v1');
    expect(output).not.toContain('hunter2pw');
  });

  it('ends at once, non-zero and saying why, when started on a port in use', async () => {
    const port = new URL(upstreamWithPassword.url).port;
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-port-in-use-'));
    const child = spawn(process.execPath, [CHATGATE_BIN, 'serve', '--port', port, '--host', '127.0.0.1', '--data-dir', join(directory, 'data')], {
      cwd: directory,
      env: { ...process.env, OPENAI_API_KEY: undefined, CHATGATE_MASTER_KEY: 'sk-port-in-use' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    // Generous for a loaded machine: before the fix it never ended.
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 15_000);
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(code, output).not.toBeNull();
    expect(code).not.toBe(0);
    expect(output).toMatch(/already in use/);
    expect(output).toContain(port);
    expect(output).not.toMatch(/Chatgate listening/);
  });
});
