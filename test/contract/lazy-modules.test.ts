/**
 * `chatgate serve` loads heavy packages only when a configured feature needs them (idle RSS):
 * ioredis only with `redis_url`, pg only with a PostgreSQL `database_url`, node-llama-cpp only
 * with a llama-cpp model. (Tokenizer tables are loaded before listening: compiling one blocks the
 * event loop, which must not happen inside a request.) A loader hook in the server process writes each package it loads to a file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startChatgate } from '../support/start-chatgate.js';

/** Module hooks: ESM resolutions (module.register) and CommonJS loads (Module._load), by package name. */
function packageLogger(directory: string): { environment: Record<string, string>; loaded(): Set<string> } {
  const logFile = join(directory, 'packages.log');
  writeFileSync(logFile, '');
  const note = `(url) => { const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url); if (m) appendFileSync(${JSON.stringify(logFile)}, m[1] + '\\n'); }`;
  const hooks = join(directory, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nconst note = ${note};\n` +
      'export async function resolve(specifier, context, next) { const result = await next(specifier, context); note(result.url); return result; }\n',
  );
  const register = join(directory, 'register.mjs');
  writeFileSync(
    register,
    `import Module, { register } from 'node:module';\nimport { appendFileSync } from 'node:fs';\nconst note = ${note};\n` +
      `register(${JSON.stringify(pathToFileURL(hooks).href)});\n` +
      'const load = Module._load;\n' +
      'Module._load = function (request, parent, isMain) { try { note(Module._resolveFilename(request, parent, isMain)); } catch {} return load.apply(this, arguments); };\n',
  );
  return {
    environment: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(register).href}`.trim() },
    loaded: () => new Set(readFileSync(logFile, 'utf8').split('\n').filter(Boolean)),
  };
}

describe('lazy loading at start', () => {
  it('serves openai-compatible and mock models without loading ioredis, pg or node-llama-cpp; the tokenizer is loaded before the first request', async () => {
    const packages = packageLogger(mkdtempSync(join(tmpdir(), 'chatgate-lazy-')));
    const config = [
      'models:',
      '  - name: upstream-model',
      '    provider: openai-compatible',
      '    base_url: http://127.0.0.1:9/v1',
      '  - name: mock-model',
      '    provider: mock',
      '',
    ].join('\n');
    const chatgate = await startChatgate({ config, environment: packages.environment });
    try {
      const models = await chatgate.client().models.list();
      expect(models.data.map((model) => model.id)).toEqual(['upstream-model', 'mock-model']);
      const atStart = packages.loaded();
      expect(atStart.has('hono')).toBe(true); // the hooks see the server's packages
      for (const name of ['ioredis', 'pg', 'node-llama-cpp']) expect(atStart.has(name), name).toBe(false);
      expect(atStart.has('gpt-tokenizer')).toBe(true);

      const completion = await chatgate.client().chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Hello' }] });
      expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
      const after = packages.loaded();
      for (const name of ['ioredis', 'pg', 'node-llama-cpp']) expect(after.has(name), name).toBe(false);
    } finally {
      await chatgate.stop();
    }
  });
});
