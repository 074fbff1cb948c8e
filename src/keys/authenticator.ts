/**
 * The gateway's authenticator: the master key, API keys (`sk-cg-…`, looked up by prefix
 * through the KeyCache, digests compared in constant time) and short-lived tokens (`cgt_…`).
 * Refusals of a known credential say why: `key_expired`, `key_revoked`, `token_expired`
 * (401); a secret replaced by a rotation whose grace period has ended is `invalid_api_key`
 * with a message saying so.
 */
import { createMasterKeyMatcher, type KeyAuthenticator } from '../auth/key-authenticator.js';
import { MASTER_PRINCIPAL, type Principal } from '../auth/principal.js';
import type { ApiKeyRecord } from '../storage/spec.js';
import type { KeyCache } from './key-cache.js';
import { refusals } from './refusals.js';
import { digestsEqual, hashSecret, keyPrefixOf, looksLikeKeySecret } from './secrets.js';
import { looksLikeToken, tokenSettings, type TokenSigner } from './tokens.js';

export interface GatewayAuthenticatorOptions {
  masterKey: string;
  keys: KeyCache;
  tokens: TokenSigner;
  now?: () => number;
}

export function principalOfKey(record: ApiKeyRecord): Principal {
  const principal: Principal = {
    keyId: record.id,
    isMaster: false,
    isAdmin: record.settings.admin,
    project: record.settings.project,
    settings: record.settings,
  };
  if (record.expiresAt !== null) principal.expiresAt = record.expiresAt;
  return principal;
}

function checkUsable(record: ApiKeyRecord, now: number, forToken: boolean): void {
  if (record.revokedAt !== null) throw forToken ? refusals.tokenParentRevoked() : refusals.keyRevoked();
  if (record.expiresAt !== null && record.expiresAt <= now) throw forToken ? refusals.tokenParentExpired() : refusals.keyExpired();
}

export function createGatewayAuthenticator(options: GatewayAuthenticatorOptions): KeyAuthenticator {
  const isMaster = createMasterKeyMatcher(options.masterKey);
  const now = options.now ?? Date.now;
  // Principals are rebuilt only when the cached record object changes.
  const principals = new WeakMap<ApiKeyRecord, Principal>();
  const principalFor = (record: ApiKeyRecord): Principal => {
    let principal = principals.get(record);
    if (!principal) principals.set(record, (principal = principalOfKey(record)));
    return principal;
  };

  async function authenticateKey(secret: string): Promise<Principal | null> {
    if (!looksLikeKeySecret(secret)) return null;
    const prefix = keyPrefixOf(secret);
    const records = await options.keys.byPrefix(prefix);
    if (records.length === 0) return null;
    const digest = hashSecret(secret);
    const time = now();
    for (const record of records) {
      if (record.prefix === prefix && digestsEqual(digest, record.secretHash)) {
        checkUsable(record, time, false);
        return principalFor(record);
      }
      if (record.previousPrefix === prefix && record.previousSecretHash !== null && digestsEqual(digest, record.previousSecretHash)) {
        checkUsable(record, time, false);
        if (record.previousValidUntil === null || record.previousValidUntil <= time) throw refusals.keyRotated();
        return principalFor(record);
      }
    }
    return null;
  }

  async function authenticateToken(token: string): Promise<Principal> {
    const payload = await options.tokens.verify(token);
    const parent = await options.keys.byId(payload.kid);
    if (!parent) throw refusals.tokenParentMissing();
    checkUsable(parent, now(), true);
    const settings = tokenSettings(payload, parent.settings);
    const expiresAt = parent.expiresAt === null ? payload.exp * 1000 : Math.min(parent.expiresAt, payload.exp * 1000);
    return { keyId: parent.id, isMaster: false, isAdmin: false, project: settings.project, settings, tokenId: payload.jti, expiresAt };
  }

  return {
    authenticate(token) {
      if (isMaster(token)) return MASTER_PRINCIPAL;
      if (looksLikeToken(token)) return authenticateToken(token);
      return authenticateKey(token);
    },
  };
}
