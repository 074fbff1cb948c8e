import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalDiskBlobStore } from './blob-store.js';
import { startTemporarySweep } from './temporary-sweep.js';

function leftover(directory: string, name: string, ageMs: number): void {
  const path = join(directory, name);
  writeFileSync(path, 'part of an upload');
  const at = (Date.now() - ageMs) / 1000;
  utimesSync(path, at, at);
}

describe('startTemporarySweep', () => {
  it('removes old leftovers at start and again on its interval, and logs what it removed', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-sweep-'));
    mkdirSync(directory, { recursive: true });
    leftover(directory, '.tmp-file-a-000000', 2 * 3600_000);
    leftover(directory, '.tmp-file-b-111111', 0);
    const logged: unknown[] = [];
    const logger = { info: (fields: unknown) => void logged.push(fields), warn: (fields: unknown) => void logged.push(fields) };
    const sweep = startTemporarySweep({ blobs: new LocalDiskBlobStore(directory), logger, intervalMs: 20 });
    try {
      await sweep.first;
      expect(readdirSync(directory)).toEqual(['.tmp-file-b-111111']);
      expect(logged).toEqual([{ removed: 1, directory }]);
      leftover(directory, '.tmp-file-b-111111', 2 * 3600_000); // its upload stopped long ago
      const deadline = Date.now() + 10_000;
      while (readdirSync(directory).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(readdirSync(directory)).toEqual([]);
    } finally {
      sweep.stop();
    }
  });
});
