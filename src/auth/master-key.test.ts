import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveMasterKey } from './master-key.js';
import { createMasterKeyAuthenticator } from './key-authenticator.js';

describe('resolveMasterKey', () => {
  it('prefers CHATGATE_MASTER_KEY', () => {
    const directory = mkdtempSync(join(tmpdir(), 'chatgate-key-'));
    expect(resolveMasterKey(directory, { CHATGATE_MASTER_KEY: 'sk-env' })).toEqual({ key: 'sk-env', origin: 'environment', path: null });
  });

  it('generates a key once, stores it with mode 0600 and reads it back', () => {
    const directory = join(mkdtempSync(join(tmpdir(), 'chatgate-key-')), 'data');
    const first = resolveMasterKey(directory, {});
    expect(first.origin).toBe('generated');
    expect(first.key).toMatch(/^sk-chatgate-[A-Za-z0-9_-]{43}$/);
    expect(statSync(first.path!).mode & 0o777).toBe(0o600);
    const second = resolveMasterKey(directory, {});
    expect(second).toEqual({ key: first.key, origin: 'file', path: first.path });
  });
});

describe('createMasterKeyAuthenticator', () => {
  it('accepts only the exact key', () => {
    const authenticator = createMasterKeyAuthenticator('sk-right');
    expect(authenticator.authenticate('sk-right')?.keyId).toBe('master');
    expect(authenticator.authenticate('sk-wrong')).toBeNull();
    expect(authenticator.authenticate('sk-righ')).toBeNull();
    expect(authenticator.authenticate('')).toBeNull();
  });
});
