import { describe, expect, it } from 'vitest';
import { digestsEqual, generateKeyId, generateKeySecret, hashSecret, isKeyId, keyPrefixOf, looksLikeKeySecret } from './secrets.js';

describe('key secrets', () => {
  it('have the documented shape and a 14-character prefix', () => {
    const secret = generateKeySecret();
    expect(secret).toMatch(/^sk-cg-[0-9A-Za-z]{48}$/);
    expect(looksLikeKeySecret(secret)).toBe(true);
    expect(keyPrefixOf(secret)).toBe(secret.slice(0, 14));
    expect(keyPrefixOf(secret)).toMatch(/^sk-cg-[0-9A-Za-z]{8}$/);
    expect(new Set(Array.from({ length: 200 }, generateKeySecret)).size).toBe(200);
  });

  it('ids are key_ + 16 lowercase letters and digits', () => {
    const id = generateKeyId();
    expect(id).toMatch(/^key_[a-z0-9]{16}$/);
    expect(isKeyId(id)).toBe(true);
    expect(isKeyId('key_ABC')).toBe(false);
  });

  it('hashes with SHA-256 hex and compares digests in constant time', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(digestsEqual(hashSecret('a'), hashSecret('a'))).toBe(true);
    expect(digestsEqual(hashSecret('a'), hashSecret('b'))).toBe(false);
    expect(digestsEqual('zz', hashSecret('b'))).toBe(false);
    expect(digestsEqual('', '')).toBe(false);
  });

  it('rejects malformed secrets before any lookup', () => {
    for (const text of ['', 'sk-cg-', 'sk-cg-short', `sk-cg-${'a'.repeat(47)}!`, `sk-xx-${'a'.repeat(48)}`]) expect(looksLikeKeySecret(text)).toBe(false);
  });
});
