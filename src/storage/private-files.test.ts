import { chmodSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makePrivate } from './private-files.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('makePrivate', () => {
  it('makes folders 0700 and files 0600 recursively, leaving what a symbolic link points to alone', () => {
    const root = mkdtempSync(join(tmpdir(), 'chatgate-private-'));
    const data = join(root, 'data');
    const outside = join(root, 'outside');
    mkdirSync(join(data, 'files'), { recursive: true });
    mkdirSync(outside);
    for (const path of [join(data, 'chatgate.db'), join(data, 'chatgate.db-wal'), join(data, 'files', 'file-1'), join(outside, 'shared.txt')]) writeFileSync(path, 'x', { mode: 0o644 });
    chmodSync(data, 0o755);
    chmodSync(join(data, 'files'), 0o775);
    symlinkSync(outside, join(data, 'link'));
    makePrivate([data, join(data, 'files')]);
    expect(modeOf(data)).toBe(0o700);
    expect(modeOf(join(data, 'files'))).toBe(0o700);
    for (const name of ['chatgate.db', 'chatgate.db-wal', 'files/file-1']) expect(modeOf(join(data, name)), name).toBe(0o600);
    expect(modeOf(outside)).not.toBe(0o700);
    expect(modeOf(join(outside, 'shared.txt'))).toBe(0o644);
    makePrivate([join(root, 'missing')]);
  });
});

describe('makePrivate with done', () => {
  it('walks only what lies outside the paths already done', () => {
    const root = mkdtempSync(join(tmpdir(), 'chatgate-private-'));
    const inside = join(root, 'data', 'files');
    const outside = join(root, 'blobs');
    mkdirSync(inside, { recursive: true });
    mkdirSync(outside, { mode: 0o755 });
    chmodSync(outside, 0o755);
    chmodSync(inside, 0o755);
    makePrivate([inside, outside], { done: [join(root, 'data')] });
    expect(modeOf(inside)).toBe(0o755);
    expect(modeOf(outside)).toBe(0o700);
  });
});
