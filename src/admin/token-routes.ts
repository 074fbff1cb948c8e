/**
 * `POST /v1/tokens`: an API key mints a short-lived token for itself, carrying a subset
 * of its rights (body: `expires_in_minutes` 1-1440, default 15; optional `models`,
 * `endpoints`, `ips`, `origins`, `rpm`, `rpd`, `tpm`). A token cannot mint tokens, and
 * the master key has no key to mint from (use `POST /admin/keys/{id}/tokens`).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { issueToError } from '../errors/validation-error.js';
import { refusals } from '../keys/refusals.js';
import { buildTokenPayload, mintTokenBody, type TokenSigner } from '../keys/tokens.js';
import type { ApiKeySettings } from '../storage/spec.js';
import { readOptionalJsonObject } from './read-body.js';

export async function mintTokenFor(signer: TokenSigner, keyId: string, parent: ApiKeySettings, input: unknown, now: number) {
  const parsed = mintTokenBody.safeParse(input);
  if (!parsed.success) throw issueToError(parsed.error.issues[0]!);
  const payload = buildTokenPayload(keyId, parent, parsed.data, now);
  const token = await signer.sign(payload);
  return {
    object: 'token' as const,
    id: payload.jti,
    key_id: keyId,
    token,
    created_at: payload.iat,
    expires_at: payload.exp,
    models: payload.models ?? parent.models,
    endpoints: payload.endpoints ?? parent.endpoints,
    ips: payload.ips ?? parent.ips,
    origins: payload.origins ?? parent.origins,
    rpm: payload.rpm ?? parent.limits.rpm ?? null,
    rpd: payload.rpd ?? parent.limits.rpd ?? null,
    tpm: payload.tpm ?? parent.limits.tpm ?? null,
  };
}

export interface TokenRouteDependencies {
  tokens: TokenSigner;
  maxBodyBytes: number;
  now?: () => number;
}

export function mintTokenHandler(dependencies: TokenRouteDependencies) {
  const now = dependencies.now ?? Date.now;
  return async (context: Context<AppEnv>): Promise<Response> => {
    const principal = context.get('principal');
    if (principal.tokenId !== undefined) throw refusals.tokenCannotMint();
    if (principal.isMaster) throw refusals.masterCannotMint();
    const body = await readOptionalJsonObject(context, dependencies.maxBodyBytes);
    return context.json(await mintTokenFor(dependencies.tokens, principal.keyId, principal.settings, body, now()), 201);
  };
}
