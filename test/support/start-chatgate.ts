/**
 * Starts the real `chatgate serve` command as a user would (the built bin, a YAML config,
 * a fresh data dir, a free port) and stops it after the test. Used by the contract tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHATGATE_BIN = join(PROJECT_ROOT, 'bin/chatgate.js');

export interface RunningChatgate {
  /** Base URL including `/v1`. */
  url: string;
  key: string;
  dataDirectory: string;
  process: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  client(options?: Partial<ConstructorParameters<typeof OpenAI>[0]>): OpenAI;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** YAML text of the config file; omitted: built-in defaults. */
  config?: string;
  environment?: Record<string, string | undefined>;
  masterKey?: string | null;
  extraArguments?: string[];
  /** false: leave out --config, so the server finds chatgate.yaml in its working directory. */
  configFlag?: boolean;
  /** Reuse a data directory (e.g. to restart on the same data). */
  dataDirectory?: string;
}

export async function startChatgate(options: StartOptions = {}): Promise<RunningChatgate> {
  const directory = mkdtempSync(join(tmpdir(), 'chatgate-contract-'));
  const dataDirectory = options.dataDirectory ?? join(directory, 'data');
  const args = [CHATGATE_BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDirectory];
  if (options.config !== undefined) {
    const configPath = join(directory, 'chatgate.yaml');
    writeFileSync(configPath, options.config);
    if (options.configFlag !== false) args.push('--config', configPath);
  }
  args.push(...(options.extraArguments ?? []));
  const masterKey = options.masterKey === undefined ? 'sk-contract-test-key' : options.masterKey;
  const environment: Record<string, string | undefined> = { ...process.env, OPENAI_API_KEY: undefined, ...options.environment };
  if (masterKey !== null) environment.CHATGATE_MASTER_KEY = masterKey;
  else delete environment.CHATGATE_MASTER_KEY;

  const child = spawn(process.execPath, args, { cwd: directory, env: environment as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (output += text));

  const url = await new Promise<string>((resolveUrl, rejectUrl) => {
    const timer = setTimeout(() => rejectUrl(new Error(`chatgate did not start within 20 s:\n${output}`)), 20_000);
    const onData = () => {
      const match = /Chatgate listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rejectUrl(new Error(`chatgate exited with code ${code} before listening:\n${output}`));
    });
  });

  let key = masterKey ?? '';
  if (masterKey === null) {
    const generated = /Generated a master key[^\n]*\n\s+(\S+)/.exec(output);
    key = generated?.[1] ?? '';
  }

  return {
    url,
    key,
    dataDirectory,
    process: child,
    output: () => output,
    client: (clientOptions = {}) => new OpenAI({ baseURL: url, apiKey: key, maxRetries: 0, ...clientOptions }),
    stop: () =>
      new Promise<void>((resolveStopped) => {
        if (child.exitCode !== null) return resolveStopped();
        child.once('exit', () => resolveStopped());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
