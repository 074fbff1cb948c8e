/**
 * Short-lived tokens: `cgt_` + base64url(JSON payload) + `.` + base64url(HMAC-SHA256).
 * The signing secret is generated once and kept in the MetadataStore
 * (`token_signing_secret`), so every instance sharing the database verifies the tokens of
 * the others. A token carries its key's id, an expiry and, optionally, narrower rights.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ApiKeySettings, MetadataStore } from '../storage/spec.js';
import { GatewayError } from '../errors/gateway-error.js';
import { ipRulesWithin } from './ip-access.js';
import { endpointList, ipList, limitValue, modelList, originList } from './key-settings.js';
import { originPatternsWithin } from './origins.js';
import { patternsWithin } from './patterns.js';
import { refusals } from './refusals.js';
import { randomString } from './secrets.js';

export const TOKEN_PREFIX = 'cgt_';
export const SIGNING_SECRET_KEY = 'token_signing_secret';
const MAX_TOKEN_LENGTH = 16_384;

export const mintTokenBody = z
  .object({
    expires_in_minutes: z.number().int().min(1).max(1440).default(15),
    models: modelList.optional(),
    endpoints: endpointList.optional(),
    ips: ipList.optional(),
    origins: originList.optional(),
    rpm: limitValue.optional(),
    rpd: limitValue.optional(),
    tpm: limitValue.optional(),
  })
  .strict();
export type MintTokenBody = z.input<typeof mintTokenBody>;

/** What a token says. Times in Unix seconds. */
export interface TokenPayload {
  v: 1;
  /** Token id. */
  jti: string;
  /** The key it was minted from. */
  kid: string;
  iat: number;
  exp: number;
  models?: string[];
  endpoints?: string[];
  ips?: string[];
  origins?: string[];
  rpm?: number;
  rpd?: number;
  tpm?: number;
}

const payloadSchema = z.object({
  v: z.literal(1),
  jti: z.string().min(1).max(64),
  kid: z.string().min(1).max(64),
  iat: z.number().int(),
  exp: z.number().int(),
  models: z.array(z.string()).optional(),
  endpoints: z.array(z.string()).optional(),
  ips: z.array(z.string()).optional(),
  origins: z.array(z.string()).optional(),
  rpm: z.number().int().positive().optional(),
  rpd: z.number().int().positive().optional(),
  tpm: z.number().int().positive().optional(),
});

function rightsExceed(param: string, what: string): GatewayError {
  return new GatewayError({
    status: 403,
    type: 'permission_error',
    code: 'rights_exceed_key',
    param,
    message: `A token can only carry a subset of its key's rights: '${param}' allows ${what} the key does not.`,
  });
}

/**
 * Checks that the requested rights lie within the key's and builds the payload
 * (expiry 1-1440 minutes, default 15). Throws 403 `rights_exceed_key` otherwise.
 */
export function buildTokenPayload(keyId: string, parent: ApiKeySettings, body: z.output<typeof mintTokenBody>, nowMs: number): TokenPayload {
  if (body.models !== undefined && !patternsWithin(body.models, parent.models)) throw rightsExceed('models', 'models');
  if (body.endpoints !== undefined && !patternsWithin(body.endpoints, parent.endpoints)) throw rightsExceed('endpoints', 'endpoints');
  if (body.ips !== undefined && !ipRulesWithin(body.ips, parent.ips)) throw rightsExceed('ips', 'addresses');
  if (body.origins !== undefined && !originPatternsWithin(body.origins, parent.origins)) throw rightsExceed('origins', 'origins');
  const iat = Math.floor(nowMs / 1000);
  const payload: TokenPayload = { v: 1, jti: `tok_${randomString('0123456789abcdefghijklmnopqrstuvwxyz', 16)}`, kid: keyId, iat, exp: iat + body.expires_in_minutes * 60 };
  if (body.models !== undefined) payload.models = body.models;
  if (body.endpoints !== undefined) payload.endpoints = body.endpoints;
  if (body.ips !== undefined) payload.ips = body.ips;
  if (body.origins !== undefined) payload.origins = body.origins;
  for (const name of ['rpm', 'rpd', 'tpm'] as const) {
    const wanted = body[name];
    if (wanted === undefined) continue;
    const limit = parent.limits[name];
    if (limit !== undefined && wanted > limit) throw rightsExceed(name, 'more requests or tokens than');
    payload[name] = wanted;
  }
  return payload;
}

function narrowList<T extends string>(token: T[] | undefined, parent: T[] | null, within: (narrow: T[], wide: T[] | null) => boolean): T[] | null {
  if (token === undefined) return parent;
  // The key's rights may have been narrowed since the token was minted: keep what is still within them.
  return token.filter((item) => within([item], parent));
}

/** The rights a token gives: its own, within its key's current ones. */
export function tokenSettings(payload: TokenPayload, parent: ApiKeySettings): ApiKeySettings {
  const limits = { ...parent.limits };
  for (const name of ['rpm', 'rpd', 'tpm'] as const) {
    const own = payload[name];
    if (own !== undefined) limits[name] = Math.min(own, limits[name] ?? own);
  }
  return {
    ...parent,
    admin: false,
    models: narrowList(payload.models, parent.models, patternsWithin),
    endpoints: narrowList(payload.endpoints, parent.endpoints, patternsWithin),
    ips: narrowList(payload.ips, parent.ips, ipRulesWithin),
    origins: narrowList(payload.origins, parent.origins, originPatternsWithin),
    limits,
  };
}

export function looksLikeToken(text: string): boolean {
  return text.startsWith(TOKEN_PREFIX);
}

export interface TokenSignerOptions {
  now?: () => number;
  /** After a signature mismatch, the secret is re-read from the store at most this often (ms). */
  reloadIntervalMs?: number;
}

/** Signs and verifies tokens with the shared secret of the MetadataStore. */
export class TokenSigner {
  private secret: Promise<Buffer> | null = null;
  private reloadedAt = 0;
  private readonly now: () => number;
  private readonly reloadIntervalMs: number;

  constructor(
    private readonly metadata: MetadataStore,
    options: TokenSignerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.reloadIntervalMs = options.reloadIntervalMs ?? 5_000;
  }

  private loadSecret(): Promise<Buffer> {
    const loading = (async () => {
      let stored = await this.metadata.get(SIGNING_SECRET_KEY);
      if (stored === null) {
        await this.metadata.set(SIGNING_SECRET_KEY, randomBytes(32).toString('base64url'));
        // Read back: if another instance wrote its own meanwhile, both use the stored one.
        stored = await this.metadata.get(SIGNING_SECRET_KEY);
      }
      if (!stored) throw new Error('The token signing secret could not be stored.');
      return Buffer.from(stored, 'base64url');
    })();
    loading.catch(() => {
      if (this.secret === loading) this.secret = null;
    });
    this.reloadedAt = this.now();
    return (this.secret = loading);
  }

  private key(): Promise<Buffer> {
    return this.secret ?? this.loadSecret();
  }

  async sign(payload: TokenPayload): Promise<string> {
    const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const signature = createHmac('sha256', await this.key()).update(body).digest('base64url');
    return `${TOKEN_PREFIX}${body}.${signature}`;
  }

  /** The payload of a well-signed, unexpired token; throws 401 `invalid_api_key` or `token_expired`. */
  async verify(token: string): Promise<TokenPayload> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > MAX_TOKEN_LENGTH) throw refusals.tokenInvalid();
    const dot = token.indexOf('.', TOKEN_PREFIX.length);
    if (dot === -1 || token.indexOf('.', dot + 1) !== -1) throw refusals.tokenInvalid();
    const body = token.slice(TOKEN_PREFIX.length, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    let valid = this.signatureMatches(body, given, await this.key());
    if (!valid && this.now() - this.reloadedAt >= this.reloadIntervalMs) valid = this.signatureMatches(body, given, await this.loadSecret());
    if (!valid) throw refusals.tokenInvalid();
    let payload: TokenPayload;
    try {
      const parsed = payloadSchema.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
      if (!parsed.success) throw refusals.tokenInvalid();
      payload = parsed.data as TokenPayload;
    } catch {
      throw refusals.tokenInvalid();
    }
    if (payload.exp * 1000 <= this.now()) throw refusals.tokenExpired();
    return payload;
  }

  private signatureMatches(body: string, given: Buffer, secret: Buffer): boolean {
    const expected = createHmac('sha256', secret).update(body).digest();
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
