import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import type { MetadataStore } from '../storage/spec.js';
import { defaultSettings } from './key-settings.js';
import { buildTokenPayload, mintTokenBody, SIGNING_SECRET_KEY, TokenSigner, tokenSettings } from './tokens.js';

function memoryMetadata(): MetadataStore & { values: Map<string, string> } {
  const values = new Map<string, string>();
  return { values, get: async (key) => values.get(key) ?? null, set: async (key, value) => void values.set(key, value) };
}

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
  it('sign and verify, with the secret kept once in the metadata store and shared by instances', async () => {
    const metadata = memoryMetadata();
    const now = Date.UTC(2026, 0, 1);
    const signer = new TokenSigner(metadata, { now: () => now });
    const payload = buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ models: ['gpt-4-turbo'] }), now);
    expect(payload.exp - payload.iat).toBe(15 * 60);
    const token = await signer.sign(payload);
    expect(token).toMatch(/^cgt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(metadata.values.get(SIGNING_SECRET_KEY)).toBeTruthy();
    const other = new TokenSigner(metadata, { now: () => now });
    expect(await other.verify(token)).toEqual(payload);
  });

  it('refuse tampered, foreign, malformed and expired tokens', async () => {
    let now = Date.UTC(2026, 0, 1);
    const signer = new TokenSigner(memoryMetadata(), { now: () => now });
    const token = await signer.sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({ expires_in_minutes: 1 }), now));
    const [body, signature] = token.slice(4).split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), exp: 9e9 })).toString('base64url');
    const foreign = await new TokenSigner(memoryMetadata(), { now: () => now }).sign(buildTokenPayload('key_aaaaaaaaaaaaaaaa', parent, mintTokenBody.parse({}), now));
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
