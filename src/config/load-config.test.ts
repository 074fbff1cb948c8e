import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load-config.js';

function writeConfig(text: string): { directory: string; path: string } {
  const directory = mkdtempSync(join(tmpdir(), 'chatgate-config-'));
  const path = join(directory, 'chatgate.yaml');
  writeFileSync(path, text);
  return { directory, path };
}

describe('loadConfig', () => {
  it('uses the built-in mock models when there is no file and no OpenAI key', () => {
    const { config, path } = loadConfig({ workingDirectory: tmpdir(), environment: {} });
    expect(path).toBeNull();
    expect(config.models.map((model) => model.name)).toEqual(['gpt-4-2026', 'gpt-4-turbo', 'gpt-4-vision', 'gpt-4-32k']);
    expect(config.models.every((model) => model.provider === 'mock')).toBe(true);
    expect(config.models.find((model) => model.name === 'gpt-4-32k')?.context_window).toBe(32000);
    expect(config.server.port).toBe(8080);
  });

  it('routes the built-in names to OpenAI when OPENAI_API_KEY is set', () => {
    const { config } = loadConfig({ workingDirectory: tmpdir(), environment: { OPENAI_API_KEY: 'sk-test' } });
    const model = config.models[0];
    expect(model?.provider).toBe('openai-compatible');
    if (model?.provider === 'openai-compatible') {
      expect(model.base_url).toBe('https://api.openai.com/v1');
      expect(model.api_key).toBe('sk-test');
    }
  });

  it('reads chatgate.yaml from the working directory and fills ${ENV} placeholders', () => {
    const { directory } = writeConfig(`
models:
  - name: gpt-4-turbo
    provider: openai-compatible
    base_url: http://127.0.0.1:9901/v1
    api_key: \${UPSTREAM_API_KEY}
    model: upstream-model-name
    context_window: 128000
server:
  port: \${PORT:-9000}
`);
    const { config, path } = loadConfig({ workingDirectory: directory, environment: { UPSTREAM_API_KEY: 'secret' } });
    expect(path).toBe(join(directory, 'chatgate.yaml'));
    const model = config.models[0];
    expect(model?.provider === 'openai-compatible' && model.api_key).toBe('secret');
    expect(model?.model).toBe('upstream-model-name');
    expect(config.server.port).toBe(9000);
  });

  it('names the bad key', () => {
    const { path } = writeConfig(`
models:
  - name: a
    provider: openai-compatible
    base_url: not a url
  - name: b
    provider: mock
    context_windw: 5
`);
    expect(() => loadConfig({ path, environment: {} })).toThrow(ConfigError);
    try {
      loadConfig({ path, environment: {} });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('models[0].base_url');
      expect(message).toContain('models[1].context_windw: unknown key');
    }
  });

  it('names the variable and key of a missing environment variable', () => {
    const { path } = writeConfig(`
models:
  - name: a
    provider: openai-compatible
    base_url: http://127.0.0.1:1/v1
    api_key: \${NOT_SET_ANYWHERE}
`);
    expect(() => loadConfig({ path, environment: {} })).toThrow(/models\[0\]\.api_key: environment variable NOT_SET_ANYWHERE is not set/);
  });

  it('rejects duplicate model names and unknown providers', () => {
    const duplicate = writeConfig(`
models:
  - { name: a, provider: mock }
  - { name: a, provider: mock }
`);
    expect(() => loadConfig({ path: duplicate.path, environment: {} })).toThrow(/models\[1\]\.name: duplicate model name 'a'/);
    const unknown = writeConfig(`
models:
  - { name: a, provider: magic }
`);
    expect(() => loadConfig({ path: unknown.path, environment: {} })).toThrow(/models\[0\]\.provider/);
  });

  it('says when the file is missing or not YAML', () => {
    expect(() => loadConfig({ path: '/nonexistent/chatgate.yaml' })).toThrow(/not found/);
    const broken = writeConfig('models: [\n');
    expect(() => loadConfig({ path: broken.path })).toThrow(/Cannot read config file/);
  });
});
