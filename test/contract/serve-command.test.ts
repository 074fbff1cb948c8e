/** `chatgate serve` as a user runs it: master key handling, config errors, CLI flags. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHATGATE_BIN, startChatgate } from '../support/start-chatgate.js';

describe('chatgate serve', () => {
  it('generates a master key once, stores it 0600, prints it once, and accepts it', async () => {
    const first = await startChatgate({ masterKey: null });
    try {
      expect(first.key).toMatch(/^sk-chatgate-/);
      expect(statSync(join(first.dataDirectory, 'master.key')).mode & 0o777).toBe(0o600);
      const models = await first.client().models.list();
      expect(models.data.length).toBe(4);
    } finally {
      await first.stop();
    }
    const second = await startChatgate({ masterKey: null, dataDirectory: first.dataDirectory });
    try {
      expect(second.output()).not.toContain(first.key);
      expect(second.output()).toContain('Master key: read from');
      const models = await second.client({ apiKey: first.key }).models.list();
      expect(models.data.length).toBe(4);
    } finally {
      await second.stop();
    }
  });

  it('refuses a bad config at start, naming the key', () => {
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-badconfig-'));
    const configPath = join(directory, 'chatgate.yaml');
    writeFileSync(configPath, 'models:\n  - name: a\n    provider: openai-compatible\n    base_url: nowhere\n');
    const result = spawnSync(process.execPath, [CHATGATE_BIN, 'serve', '--config', configPath, '--port', '0'], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('models[0].base_url');
  });

  it('refuses a bad flag with usage', () => {
    const result = spawnSync(process.execPath, [CHATGATE_BIN, 'serve', '--port', 'eighty'], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--port');
  });

  it('reads chatgate.yaml from the working directory', async () => {
    const chatgate = await startChatgate({ config: 'models:\n  - name: only-model\n    provider: mock\n', configFlag: false });
    try {
      const models = await chatgate.client().models.list();
      expect(models.data.map((model) => model.id)).toEqual(['only-model']);
      expect(chatgate.output()).toContain('chatgate.yaml');
    } finally {
      await chatgate.stop();
    }
  });
});
