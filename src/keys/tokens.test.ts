import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import type { MetadataStore } from '../storage/spec.js';
import { defaultSettings } from './key-settings.js';
import { createHmac } from 'node:crypto';
import { buildTokenPayload, LEGACY_SIGNING_SECRET_KEY, mintTokenBody, SIGNING_SALT_KEY, TokenSigner, tokenSettings, type TokenPayload } from './tokens.js';

function memoryMetadata(): MetadataStore & { values: Map<string, string> } {
  const values = new Map<string, string>();
  return { values, get: async (key) => values.get(key) ?? null, set: async (key, value) => void values.set(key, value) };
}

const MASTER = 'sk-chatgate-test-master';

const parent = { ...defaultSettings(), models: ['gpt-4*', 'embed'], ips: ['10.0.0.0/8'], origins: ['*.example.com'], limits: { rpm: 100 } };

function errorOf(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a refusal');
}

describe('short-lived tokens', () => {
  it('sign and verify, with the salt kept once in the metadata store and shared by instances', async () => {
    const metadata = memoryMetadata();
    const now = Date.UTC(2026, 0, 1);
    const signer = new TokenSigner(metadata, MASTER, { now: () => now });
    const payload = buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ models: ['gpt-4-turbo'] }), now);
    expect(payload.exp - payload.iat).toBe(15 * 60);
    const token = await signer.sign(payload);
    expect(token).toMatch(/^cgt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(metadata.values.get(SIGNING_SALT_KEY)).toBeTruthy();
    const other = new TokenSigner(metadata, MASTER, { now: () => now });
    expect(await other.verify(token)).toEqual(payload);
  });

  it('refuse tampered, foreign, malformed and expired tokens', async () => {
    let now = Date.UTC(2026, 0, 1);
    const signer = new TokenSigner(memoryMetadata(), MASTER, { now: () => now });
    const token = await signer.sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ expires_in_minutes: 1 }), now));
    const [body, signature] = token.slice(4).split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), exp: 9e9 })).toString('base64url');
    const foreign = await new TokenSigner(memoryMetadata(), MASTER, { now: () => now }).sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({}), now));
    for (const bad of [`cgt_${forged}.${signature}`, foreign, `cgt_${body}`, `cgt_${body}.${signature}.x`, 'cgt_', `cgt_${body}.${signature.slice(1)}`]) {
      const error = await signer.verify(bad).catch((caught: unknown) => caught as GatewayError);
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).status).toBe(401);
      expect((error as GatewayError).code).toBe('invalid_api_key');
    }
    now += 60_000;
    const expired = await signer.verify(token).catch((caught: unknown) => caught as GatewayError);
    expect((expired as GatewayError).code).toBe('token_expired');
    expect((expired as GatewayError).status).toBe(401);
  });

  it('refuse a well-signed token whose lifetime exceeds the maximum, or issued in the future', async () => {
    const now = Date.UTC(2026, 0, 1);
    const signer = new TokenSigner(memoryMetadata(), MASTER, { now: () => now });
    const minted = buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ expires_in_minutes: 1440 }), now);
    expect(await signer.verify(await signer.sign(minted))).toEqual(minted);
    const iat = minted.iat;
    const forgeries: Array<Partial<TokenPayload>> = [
      { exp: Math.floor(Date.UTC(2100, 0, 1) / 1000) }, // the forged exp of the issue
      { exp: iat + 1440 * 60 + 1 }, // one second over the maximum
      { iat: iat + 3600, exp: iat + 3600 + 60 }, // issued an hour ahead
      { iat: iat + 2 * 86_400, exp: iat + 2 * 86_400 + 60 }, // a short lifetime that starts in two days
      { exp: iat }, // not after its issue
    ];
    for (const change of forgeries) {
      const error = await signer.verify(await signer.sign({ ...minted, ...change })).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(change)).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).status).toBe(401);
      expect((error as GatewayError).code).toBe('invalid_api_key');
      expect((error as GatewayError).type).toBe('invalid_request_error');
    }
    // Issued a little ahead by an instance whose clock runs fast: accepted.
    const skewed = { ...minted, iat: iat + 30, exp: iat + 30 + 900 };
    expect(await signer.verify(await signer.sign(skewed))).toEqual(skewed);
  });

  it('keep no signing secret readable in the metadata store, and empty the plain one of earlier versions', async () => {
    const metadata = memoryMetadata();
    metadata.values.set(LEGACY_SIGNING_SECRET_KEY, 'b2xkLXBsYWluLXNlY3JldC1vZi1lYXJsaWVyLXZlcnNpb25z');
    const now = Date.UTC(2026, 0, 1);
    const token = await new TokenSigner(metadata, MASTER, { now: () => now }).sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({}), now));
    const [body, signature] = token.slice(4).split('.') as [string, string];
    expect(metadata.values.get(LEGACY_SIGNING_SECRET_KEY)).toBe('');
    for (const value of metadata.values.values()) {
      for (const key of [Buffer.from(value, 'base64url'), Buffer.from(value, 'utf8')]) {
        expect(createHmac('sha256', key).update(body).digest('base64url')).not.toBe(signature);
      }
    }
  });

  it('refuse, without failing otherwise, the tokens signed before the master key changed', async () => {
    const metadata = memoryMetadata();
    const now = Date.UTC(2026, 0, 1);
    const token = await new TokenSigner(metadata, MASTER, { now: () => now }).sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({}), now));
    const afterChange = new TokenSigner(metadata, 'sk-chatgate-another-master', { now: () => now });
    const error = await afterChange.verify(token).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(401);
    expect((error as GatewayError).code).toBe('invalid_api_key');
    const fresh = buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({}), now);
    expect(await afterChange.verify(await afterChange.sign(fresh))).toEqual(fresh);
  });

  it('carry only a subset of the key\'s rights', () => {
    const now = Date.now();
    const build = (body: unknown) => buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse(body), now);
    expect(build({ models: ['gpt-4-turbo', 'gpt-4o*'], ips: ['10.1.0.0/16'], origins: ['https://app.example.com'], rpm: 10 })).toMatchObject({ rpm: 10 });
    expect(errorOf(() => build({ models: ['gpt-3.5'] }))).toMatchObject({ status: 403, code: 'rights_exceed_key', param: 'models' });
    expect(errorOf(() => build({ models: ['*'] }))).toMatchObject({ param: 'models' });
    expect(errorOf(() => build({ ips: ['0.0.0.0/0'] }))).toMatchObject({ param: 'ips' });
    expect(errorOf(() => build({ origins: ['https://evil.com'] }))).toMatchObject({ param: 'origins' });
    expect(errorOf(() => build({ rpm: 1000 }))).toMatchObject({ param: 'rpm' });
    expect(build({ tpm: 5 }).tpm).toBe(5); // the key has no tpm limit: any narrower limit is fine
    expect(mintTokenBody.safeParse({ expires_in_minutes: 0 }).success).toBe(false);
    expect(mintTokenBody.safeParse({ expires_in_minutes: 1441 }).success).toBe(false);
    expect(mintTokenBody.safeParse({ admin: true }).success).toBe(false);
  });

  it('give the token\'s rights within the key\'s current ones', () => {
    const payload = buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ models: ['gpt-4-turbo', 'embed'], rpm: 10 }), Date.now());
    const settings = tokenSettings(payload, parent);
    expect(settings).toMatchObject({ admin: false, models: ['gpt-4-turbo', 'embed'], ips: ['10.0.0.0/8'], limits: { rpm: 10 } });
    const narrowed = tokenSettings(payload, { ...parent, admin: true, models: ['embed'], limits: { rpm: 5 } });
    expect(narrowed).toMatchObject({ admin: false, models: ['embed'], limits: { rpm: 5 } });
  });
});
