import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Principal } from '../auth/principal.js';
import { GatewayError } from '../errors/gateway-error.js';
import { openSqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { Store } from '../storage/spec.js';
import { authorize, checkModelAllowed } from './access-policy.js';
import { createGatewayAuthenticator } from './authenticator.js';
import { KeyCache } from './key-cache.js';
import { KeyService } from './key-service.js';
import { buildTokenPayload, mintTokenBody, TokenSigner } from './tokens.js';
import type { KeyAuthenticator } from '../auth/key-authenticator.js';

let store: Store;
let now: number;
let service: KeyService;
let signer: TokenSigner;
let authenticator: KeyAuthenticator;

beforeEach(async () => {
  store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'chatgate-auth-')), 'chatgate.db'));
  await store.migrate();
  now = Date.now();
  const cache = new KeyCache(store.keys, { now: () => now });
  service = new KeyService(store.keys, { now: () => now, onChange: () => cache.invalidate() });
  signer = new TokenSigner(store.metadata, 'sk-master', { now: () => now });
  authenticator = createGatewayAuthenticator({ masterKey: 'sk-master', keys: cache, tokens: signer, now: () => now });
});
afterEach(() => store.close());

async function refusal(token: string): Promise<GatewayError | null> {
  try {
    return (await authenticator.authenticate(token)) ? null : new GatewayError({ status: 401, type: 'x', code: 'invalid_api_key', message: 'unknown' });
  } catch (error) {
    return error as GatewayError;
  }
}

function denied(principal: Principal, request: Parameters<typeof authorize>[1]): string | null {
  try {
    authorize(principal, request);
    return null;
  } catch (error) {
    expect((error as GatewayError).status).toBe(403);
    return (error as GatewayError).code;
  }
}

describe('the gateway authenticator', () => {
  it('accepts the master key with every right', async () => {
    const principal = (await authenticator.authenticate('sk-master'))!;
    expect(principal).toMatchObject({ keyId: 'master', isMaster: true, isAdmin: true });
    expect(denied(principal, { path: '/admin/keys', model: 'x', clientIp: null, origin: 'https://evil.com' })).toBeNull();
  });

  it('accepts a key and refuses unknown, expired and revoked ones with their reason', async () => {
    const { record, secret } = await service.create({ name: 'a', admin: true, project: 'p1', expires_in_days: 1 });
    expect(await authenticator.authenticate(secret)).toMatchObject({ keyId: record.id, isMaster: false, isAdmin: true, project: 'p1' });
    expect(await authenticator.authenticate(`${secret.slice(0, -1)}x`)).toBeNull();
    expect(await authenticator.authenticate('sk-cg-nonsense')).toBeNull();
    expect(await authenticator.authenticate('')).toBeNull();
    now += 86_400_000;
    expect(await refusal(secret)).toMatchObject({ status: 401, code: 'key_expired' });
    now -= 86_400_000;
    await service.revoke(record.id);
    expect(await refusal(secret)).toMatchObject({ status: 401, code: 'key_revoked' });
  });

  it('accepts both secrets during a rotation\'s grace period, then only the new one', async () => {
    const { record, secret } = await service.create({ name: 'a' });
    const rotated = await service.rotate(record.id, 60);
    expect((await authenticator.authenticate(secret))?.keyId).toBe(record.id);
    expect((await authenticator.authenticate(rotated.secret))?.keyId).toBe(record.id);
    now += 60_000;
    const error = await refusal(secret);
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect(error!.message).toMatch(/rotation/);
    expect((await authenticator.authenticate(rotated.secret))?.keyId).toBe(record.id);
  });

  it('accepts tokens with narrowed rights, refusing them once expired or when the key is revoked', async () => {
    const { record } = await service.create({ name: 'a', admin: true, models: ['gpt-4*'] });
    const token = await signer.sign(buildTokenPayload(record.id, record.settings, mintTokenBody.parse({ expires_in_minutes: 2, models: ['gpt-4-turbo'] }), now));
    const principal = (await authenticator.authenticate(token))!;
    expect(principal).toMatchObject({ keyId: record.id, isAdmin: false, tokenId: expect.stringMatching(/^tok_/) });
    expect(() => checkModelAllowed(principal, 'gpt-4-turbo')).not.toThrow();
    expect(() => checkModelAllowed(principal, 'gpt-4o')).toThrow(/gpt-4o/);
    now += 120_000;
    expect(await refusal(token)).toMatchObject({ status: 401, code: 'token_expired' });
    now -= 120_000;
    await service.revoke(record.id);
    expect(await refusal(token)).toMatchObject({ status: 401, code: 'key_revoked' });
  });
});

describe('authorize', () => {
  it('refuses what the key does not allow, with the reason as code', async () => {
    const { secret } = await service.create({ name: 'a', models: ['gpt-4*'], endpoints: ['/v1/chat/*', '/v1/models'], ips: ['10.0.0.0/8', '2001:db8::/32'], origins: ['https://app.example.com'] });
    const principal = (await authenticator.authenticate(secret))!;
    const ok = { path: '/v1/chat/completions', clientIp: '10.1.2.3', origin: 'https://app.example.com' };
    expect(denied(principal, ok)).toBeNull();
    expect(denied(principal, { ...ok, clientIp: '::ffff:10.9.9.9' })).toBeNull();
    expect(denied(principal, { ...ok, clientIp: '2001:db8::1' })).toBeNull();
    expect(denied(principal, { ...ok, model: 'gpt-3.5-turbo' })).toBe('model_not_allowed');
    expect(denied(principal, { ...ok, path: '/v1/embeddings' })).toBe('endpoint_not_allowed');
    expect(denied(principal, { ...ok, clientIp: '11.0.0.1' })).toBe('ip_not_allowed');
    expect(denied(principal, { ...ok, clientIp: null })).toBe('ip_not_allowed');
    expect(denied(principal, { ...ok, origin: 'https://evil.com' })).toBe('origin_not_allowed');
    expect(denied(principal, { ...ok, origin: undefined, referer: 'https://app.example.com/page' })).toBeNull();
    expect(denied(principal, { ...ok, origin: undefined })).toBe('origin_not_allowed');
    try {
      checkModelAllowed(principal, 'gpt-3.5-turbo');
    } catch (error) {
      expect((error as GatewayError).param).toBe('model');
    }
  });
});
