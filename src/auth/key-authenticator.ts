/**
 * Turns a bearer token into a principal, comparing secrets in constant time: both sides
 * are hashed to fixed-length digests first, so neither content nor length leaks through
 * timing. Key management (many keys with scopes) builds on this interface later.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface Principal {
  /** 'master' for the master key. */
  keyId: string;
  isMaster: boolean;
}

export interface KeyAuthenticator {
  authenticate(token: string): Principal | null;
}

export function digestSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function createMasterKeyAuthenticator(masterKey: string): KeyAuthenticator {
  const expected = digestSecret(masterKey);
  const principal: Principal = Object.freeze({ keyId: 'master', isMaster: true });
  return {
    authenticate(token) {
      return timingSafeEqual(digestSecret(token), expected) ? principal : null;
    },
  };
}
