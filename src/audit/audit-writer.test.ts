import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../storage/spec.js';
import { AuditWriter } from './audit-writer.js';

function record(index: number): AuditRecord {
  return {
    requestId: `req_${index}`, createdAt: 1_700_000_000_000 + index, method: 'POST', path: '/v1/chat/completions', model: 'm', provider: 'mock',
    status: 200, durationMs: 1.5, promptTokens: 1, completionTokens: 2, cachedTokens: 0, costMicros: 3, stream: false, cacheHit: null,
    errorCode: null, keyId: 'master', user: null, clientIp: '127.0.0.1', requestBody: null, responseBody: null,
  };
}

const directories: string[] = [];
function spillDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'chatgate-audit-writer-'));
  directories.push(directory);
  return directory;
}
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('AuditWriter', () => {
  it('writes every record in batches, in order', async () => {
    const written: AuditRecord[] = [];
    const batches: number[] = [];
    const writer = new AuditWriter({ store: { append: async (batch) => { batches.push(batch.length); written.push(...batch); } }, spillDirectory: spillDirectory(), batchSize: 100, flushIntervalMs: 5, onError: () => {} });
    for (let index = 0; index < 250; index++) writer.record(record(index));
    await writer.flush();
    expect(written.map((entry) => entry.requestId)).toEqual(Array.from({ length: 250 }, (_, index) => `req_${index}`));
    expect(Math.max(...batches)).toBeLessThanOrEqual(100);
    await writer.close();
  });

  it('retries a failing store until it works, never dropping, and reports backlog past the high-water mark', async () => {
    let failures = 3;
    const written: AuditRecord[] = [];
    const messages: string[] = [];
    const writer = new AuditWriter({
      store: { append: async (batch) => { if (failures-- > 0) throw new Error('database down'); written.push(...batch); } },
      spillDirectory: spillDirectory(), batchSize: 10, flushIntervalMs: 1, highWater: 20, maxRetryDelayMs: 20,
      onError: (message) => messages.push(message),
    });
    for (let index = 0; index < 30; index++) writer.record(record(index));
    expect(writer.backlogged).toBe(true);
    await writer.flush();
    expect(written).toHaveLength(30);
    expect(writer.backlogged).toBe(false);
    expect(messages[0]).toContain('retrying');
    expect(messages.at(-1)).toContain('works again');
    await writer.close();
  });

  it('spills what the store refuses at shutdown, and a later writer replays it', async () => {
    const directory = spillDirectory();
    const down = new AuditWriter({ store: { append: async () => { throw new Error('down'); } }, spillDirectory: directory, flushIntervalMs: 1, maxRetryDelayMs: 10, onError: () => {} });
    for (let index = 0; index < 5; index++) down.record(record(index));
    await down.close(100);
    expect(readdirSync(directory).filter((name) => name.startsWith('audit-spill-'))).toHaveLength(1);
    const written: AuditRecord[] = [];
    const up = new AuditWriter({ store: { append: async (batch) => { written.push(...batch); } }, spillDirectory: directory, onError: () => {} });
    expect(await up.replaySpills()).toBe(5);
    expect(written.map((entry) => entry.requestId)).toEqual(['req_0', 'req_1', 'req_2', 'req_3', 'req_4']);
    expect(readdirSync(directory)).toHaveLength(0);
    await up.close();
  });
});

describe('AuditWriter with malformed records', () => {
  it('skips (and reports) only the records the store refuses as malformed', async () => {
    const written: string[] = [];
    const messages: string[] = [];
    const writer = new AuditWriter({
      store: {
        append: async (batch) => {
          if (batch.some((entry) => entry.requestId === 'req_2')) throw new TypeError('durationMs is NaN');
          written.push(...batch.map((entry) => entry.requestId));
        },
      },
      spillDirectory: spillDirectory(), flushIntervalMs: 1, onError: (message) => messages.push(message),
    });
    for (let index = 0; index < 5; index++) writer.record(record(index));
    await writer.flush();
    expect(written).toEqual(['req_0', 'req_1', 'req_3', 'req_4']);
    expect(messages.join()).toContain('req_2');
    await writer.close();
  });
});
