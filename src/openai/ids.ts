/** Object ids in OpenAI's style: a prefix and random alphanumerics. */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomAlphanumeric(length: number): string {
  const bytes = randomBytes(length);
  let text = '';
  for (let index = 0; index < length; index++) text += ALPHABET[bytes[index]! % 62];
  return text;
}

export function newObjectId(prefix: string, length = 29): string {
  return `${prefix}${randomAlphanumeric(length)}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
