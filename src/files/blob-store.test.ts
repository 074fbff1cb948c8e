import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobTooLargeError, LocalDiskBlobStore } from './blob-store.js';

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'chatgate-blobs-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

describe('LocalDiskBlobStore', () => {
  it('puts, sizes, gets and deletes a blob (creating its directory)', async () => {
    const blobs = new LocalDiskBlobStore(join(directory, 'nested', 'files'));
    expect(await blobs.put('file-abc', chunks('hello ', 'world'))).toBe(11);
    expect(await blobs.size('file-abc')).toBe(11);
    expect(await text((await blobs.get('file-abc'))!)).toBe('hello world');
    expect(await blobs.put('file-abc', chunks('replaced'))).toBe(8);
    expect(await text((await blobs.get('file-abc'))!)).toBe('replaced');
    const reader = (await blobs.reader('file-abc'))!;
    expect((await reader.read(2, 3)).toString()).toBe('pla');
    expect((await reader.read(6, 10)).toString()).toBe('ed');
    await reader.close();
    expect(await blobs.reader('file-missing')).toBeNull();
    expect(await blobs.delete('file-abc')).toBe(true);
    expect(await blobs.delete('file-abc')).toBe(false);
    expect(await blobs.get('file-abc')).toBeNull();
    expect(await blobs.size('file-abc')).toBeNull();
    expect(readdirSync(join(directory, 'nested', 'files'))).toEqual([]);
  });

  it('keeps nothing of a blob over the limit, nor of a failed source, and keeps the old blob', async () => {
    const blobs = new LocalDiskBlobStore(directory);
    await blobs.put('file-old', chunks('old'));
    await expect(blobs.put('file-big', chunks('12345', '67890'), { maxBytes: 7 })).rejects.toBeInstanceOf(BlobTooLargeError);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('partial');
      throw new Error('client went away');
    }
    await expect(blobs.put('file-old', failing())).rejects.toThrow('client went away');
    expect(readdirSync(directory)).toEqual(['file-old']);
    expect(await text((await blobs.get('file-old'))!)).toBe('old');
    expect(await blobs.put('file-exact', chunks('1234567'), { maxBytes: 7 })).toBe(7);
  });

  it('refuses keys that could leave its directory', async () => {
    const blobs = new LocalDiskBlobStore(directory);
    await expect(blobs.put('../escape', chunks('x'))).rejects.toThrow(TypeError);
    await expect(blobs.get('a/b')).rejects.toThrow(TypeError);
    await expect(blobs.delete('')).rejects.toThrow(TypeError);
  });

  it('removes the temporary files of interrupted puts by age, never a blob nor a put in progress', async () => {
    const blobs = new LocalDiskBlobStore(directory);
    expect(await blobs.removeStaleTemporaries(1000)).toBe(0); // no directory yet
    await blobs.put('file-kept', chunks('kept'));
    const hourAgo = (Date.now() - 2 * 3600_000) / 1000;
    writeFileSync(join(directory, '.tmp-file-crashed-0a1b2c'), 'half an upload');
    utimesSync(join(directory, '.tmp-file-crashed-0a1b2c'), hourAgo, hourAgo);
    utimesSync(join(directory, 'file-kept'), hourAgo, hourAgo);
    writeFileSync(join(directory, '.tmp-file-fresh-3d4e5f'), 'another instance uploading');
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = blobs.put('file-slow', (async function* () {
      yield Buffer.from('first part');
      await gate;
      yield Buffer.from(', second part');
    })());
    while (!readdirSync(directory).some((name) => name.startsWith('.tmp-file-slow-'))) await new Promise((resolve) => setTimeout(resolve, 5));

    expect(await blobs.removeStaleTemporaries(3600_000)).toBe(1);
    expect(readdirSync(directory).sort()).toEqual(expect.arrayContaining(['.tmp-file-fresh-3d4e5f', 'file-kept']));
    expect(readdirSync(directory)).not.toContain('.tmp-file-crashed-0a1b2c');
    release();
    expect(await slow).toBe('first part, second part'.length);
    expect(await text((await blobs.get('file-slow'))!)).toBe('first part, second part');
  });
});
