import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { registerModel } from './register.js';

function directory(): string {
  return mkdtempSync(join(tmpdir(), 'chatgate-register-'));
}

const COMMENTED = `# Chatgate config
server:
  port: 9000 # not the default

models:
  # upstream
  - name: gpt-4-turbo
    provider: openai-compatible
    base_url: http://127.0.0.1:8000/v1
    api_key: \${UPSTREAM_KEY_NOT_SET_IN_TESTS}
  - name: local
    provider: llama-cpp
    path: ./models/local.gguf
    threads: 2 # keep
`;

describe('registerModel', () => {
  it('creates a missing config with just the model', async () => {
    const dir = directory();
    const configPath = join(dir, 'sub', 'chatgate.yaml');
    expect(await registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir })).toBe('created');
    expect(parse(readFileSync(configPath, 'utf8'))).toEqual({ models: [{ name: 'tiny', provider: 'llama-cpp', path: '/m/tiny.gguf' }] });
  });

  it('appends to an existing config keeping comments and formatting (unset env placeholders are fine)', async () => {
    const dir = directory();
    const configPath = join(dir, 'chatgate.yaml');
    writeFileSync(configPath, COMMENTED);
    expect(await registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir, environment: {} })).toBe('added');
    const text = readFileSync(configPath, 'utf8');
    expect(text.startsWith(COMMENTED.trimEnd())).toBe(true);
    expect(text).toContain('# upstream');
    expect(text).toContain('threads: 2 # keep');
    expect(text.endsWith('  - name: tiny\n    provider: llama-cpp\n    path: /m/tiny.gguf\n')).toBe(true);
    expect(readdirSync(dir)).toEqual(['chatgate.yaml']);
  });

  it('leaves a model with the same name and file alone (relative paths resolved)', async () => {
    const dir = directory();
    const configPath = join(dir, 'chatgate.yaml');
    writeFileSync(configPath, COMMENTED);
    expect(await registerModel({ configPath, name: 'local', modelPath: join(dir, 'models/local.gguf'), workingDirectory: dir, environment: {} })).toBe('unchanged');
    expect(readFileSync(configPath, 'utf8')).toBe(COMMENTED);
  });

  it('refuses a name used for another file or provider unless forced', async () => {
    const dir = directory();
    const configPath = join(dir, 'chatgate.yaml');
    writeFileSync(configPath, COMMENTED);
    await expect(registerModel({ configPath, name: 'local', modelPath: '/other.gguf', workingDirectory: dir, environment: {} })).rejects.toThrow(/already exists.*--force/);
    await expect(registerModel({ configPath, name: 'gpt-4-turbo', modelPath: '/other.gguf', workingDirectory: dir, environment: {} })).rejects.toThrow(/openai-compatible/);
    expect(readFileSync(configPath, 'utf8')).toBe(COMMENTED);

    expect(await registerModel({ configPath, name: 'local', modelPath: '/other.gguf', force: true, workingDirectory: dir, environment: {} })).toBe('updated');
    expect(readFileSync(configPath, 'utf8')).toContain('path: /other.gguf\n    threads: 2 # keep');
    expect(await registerModel({ configPath, name: 'gpt-4-turbo', modelPath: '/x.gguf', force: true, workingDirectory: dir, environment: {} })).toBe('replaced');
    const models = (parse(readFileSync(configPath, 'utf8')) as { models: unknown[] }).models;
    expect(models[0]).toEqual({ name: 'gpt-4-turbo', provider: 'llama-cpp', path: '/x.gguf' });
  });

  it('adds a models list to a config without one, and refuses invalid results and YAML', async () => {
    const dir = directory();
    const configPath = join(dir, 'chatgate.yaml');
    writeFileSync(configPath, '# only a comment\nlog_level: debug\n');
    expect(await registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir })).toBe('added');
    expect(readFileSync(configPath, 'utf8')).toContain('# only a comment');

    writeFileSync(configPath, 'log_level: loud\nmodels: []\n');
    await expect(registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir })).rejects.toThrow(/would be invalid[\s\S]*log_level/);
    writeFileSync(configPath, 'models: [\n');
    await expect(registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir })).rejects.toThrow(/not valid YAML/);
    writeFileSync(configPath, 'models: 3\n');
    await expect(registerModel({ configPath, name: 'tiny', modelPath: '/m/tiny.gguf', workingDirectory: dir })).rejects.toThrow(/not a list/);
  });
});
