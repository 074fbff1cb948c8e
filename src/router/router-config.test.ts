import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load-config.js';
import { routerTargetConfigs } from './target-configs.js';

function load(yaml: string) {
  const directory = mkdtempSync(join(tmpdir(), 'chatgate-router-config-'));
  const path = join(directory, 'chatgate.yaml');
  writeFileSync(path, yaml);
  return loadConfig({ path, workingDirectory: directory, environment: {} });
}

describe('router model config', () => {
  it('parses targets with defaults, ids and per-target timeouts', () => {
    const { config } = load(`
models:
  - name: mock-first
    provider: mock
  - name: gpt-4-turbo
    provider: router
    context_window: 32000
    timeouts: { first_token_ms: 2000, connect_ms: 500 }
    targets:
      - provider: openai-compatible
        base_url: http://127.0.0.1:1/v1
        model: gpt-4o
      - id: backup
        provider: mock
        timeouts: { first_token_ms: 100 }
`);
    const model = config.models[1]!;
    expect(model.provider).toBe('router');
    if (model.provider !== 'router') return;
    expect(model.strategy).toBe('fallback');
    expect(model.retry).toEqual({ max_attempts: 3, base_delay_ms: 200, max_delay_ms: 5000, max_retry_after_ms: 30000 });
    expect(model.breaker).toEqual({ failure_threshold: 5, cooldown_ms: 30000 });
    expect(model.context_window).toBe(32000);
    const targets = routerTargetConfigs(model);
    expect(targets.map((target) => target.id)).toEqual(['openai-compatible:gpt-4o', 'backup']);
    expect(targets[0]!.config).toMatchObject({ name: 'gpt-4-turbo', provider: 'openai-compatible', model: 'gpt-4o', connect_timeout_ms: 500 });
    expect(targets[0]!.firstTokenMs).toBe(2000);
    expect(targets[1]!.firstTokenMs).toBe(100);
    expect(targets[1]!.config).toMatchObject({ name: 'gpt-4-turbo', provider: 'mock' });
  });

  it('names the bad key of a target', () => {
    expect(() =>
      load(`
models:
  - name: a
    provider: mock
  - name: b
    provider: mock
  - name: r
    provider: router
    targets:
      - provider: mock
      - provider: openai-compatible
        base_url: not a url
`),
    ).toThrow(/models\[2\]\.targets\[1\]\.base_url/);
    expect(() =>
      load(`
models:
  - name: r
    provider: router
    targets:
      - provider: mock
        bogus: 1
`),
    ).toThrow(/models\[0\]\.targets\[0\]\.bogus: unknown key/);
    expect(() =>
      load(`
models:
  - name: r
    provider: router
    targets: [{ provider: mock, model: x }, { provider: mock, model: x }]
`),
    ).toThrow(/models\[0\]\.targets\[1\]\.id: duplicate target id 'mock:x'/);
    expect(() =>
      load(`
models:
  - name: r
    provider: router
    strategy: fastest
    targets: [{ provider: mock }]
`),
    ).toThrow(/models\[0\]\.strategy/);
    expect(() =>
      load(`
models:
  - name: r
    provider: router
    targets: []
`),
    ).toThrow(/models\[0\]\.targets/);
  });
});
