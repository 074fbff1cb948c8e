/**
 * API key secrets: `sk-cg-` + 8 random characters (the visible prefix part) + 40 random
 * base62 characters. Only the SHA-256 digest is stored; the prefix (`sk-cg-XXXXXXXX`)
 * identifies the key later. Digests are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_SECRET_PREFIX = 'sk-cg-';
const PREFIX_PART_LENGTH = 8;
const SECRET_PART_LENGTH = 40;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const KEY_SECRET_PATTERN = /^sk-cg-[0-9A-Za-z]{48}$/;
const KEY_ID_PATTERN = /^key_[a-z0-9]{16}$/;

/** `length` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias). */
export function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let text = '';
  while (text.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit) text += alphabet[byte % alphabet.length];
      if (text.length === length) break;
    }
  }
  return text;
}

export function generateKeySecret(): string {
  return `${KEY_SECRET_PREFIX}${randomString(BASE62, PREFIX_PART_LENGTH)}${randomString(BASE62, SECRET_PART_LENGTH)}`;
}

export function generateKeyId(): string {
  return `key_${randomString(ID_ALPHABET, 16)}`;
}

export function isKeyId(text: string): boolean {
  return KEY_ID_PATTERN.test(text);
}

/** Whether the text has the shape of a key secret (checked before any lookup). */
export function looksLikeKeySecret(text: string): boolean {
  return KEY_SECRET_PATTERN.test(text);
}

/** The stored, visible prefix of a secret: `sk-cg-XXXXXXXX`. */
export function keyPrefixOf(secret: string): string {
  return secret.slice(0, KEY_SECRET_PREFIX.length + PREFIX_PART_LENGTH);
}

/** SHA-256 of the secret, lowercase hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests (false for malformed or differently sized input). */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  if (left.length !== 32 || right.length !== 32) return false;
  return timingSafeEqual(left, right);
}
