/**
 * Turns a bearer token into a principal, comparing secrets in constant time: both sides
 * are hashed to fixed-length digests first, so neither content nor length leaks through
 * timing. API keys and short-lived tokens are handled by src/keys/authenticator.ts, which
 * builds on this interface.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MASTER_PRINCIPAL, type Principal } from './principal.js';

export type { Principal } from './principal.js';

export interface KeyAuthenticator {
  /**
   * The principal, or null for an unknown credential (401 `invalid_api_key`). Throws a
   * GatewayError when the credential is known but refused (expired, revoked, …).
   */
  authenticate(token: string): Principal | null | Promise<Principal | null>;
}

export function digestSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Whether `token` is the master key (constant time). */
export function createMasterKeyMatcher(masterKey: string): (token: string) => boolean {
  const expected = digestSecret(masterKey);
  return (token) => timingSafeEqual(digestSecret(token), expected);
}

/** A synchronous authenticator (the master key alone). */
export interface SyncKeyAuthenticator extends KeyAuthenticator {
  authenticate(token: string): Principal | null;
}

export function createMasterKeyAuthenticator(masterKey: string): SyncKeyAuthenticator {
  const isMaster = createMasterKeyMatcher(masterKey);
  return {
    authenticate(token) {
      return isMaster(token) ? MASTER_PRINCIPAL : null;
    },
  };
}
