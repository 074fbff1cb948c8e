/**
 * Short-lived tokens: `cgt_` + base64url(JSON payload) + `.` + base64url(HMAC-SHA256).
 * The signing key is derived from the master key and a random salt kept in the
 * MetadataStore (`token_signing_salt`) by HKDF-SHA256: the database alone (a backup, a
 * leaked file) cannot sign tokens, and every instance sharing the database and the master
 * key verifies the tokens of the others. A token carries its key's id, an expiry and,
 * optionally, narrower rights; its lifetime is checked again at every verification.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
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
/** Where earlier versions kept the signing secret itself, in plain; emptied once a salt is in use. */
export const LEGACY_SIGNING_SECRET_KEY = 'token_signing_secret';
export const SIGNING_SALT_KEY = 'token_signing_salt';
const SIGNING_KEY_INFO = 'chatgate token signing v1';
const MAX_TOKEN_LENGTH = 16_384;
/** The longest lifetime a token is minted with (minutes); verification refuses longer ones. */
export const MAX_TOKEN_LIFETIME_MINUTES = 1440;
/** How far a token's issue time may lie ahead of this clock (instances' clocks differ a little). */
export const TOKEN_CLOCK_SKEW_SECONDS = 60;

export const mintTokenBody = z
  .object({
    expires_in_minutes: z.number().int().min(1).max(MAX_TOKEN_LIFETIME_MINUTES).default(15),
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
  /** After a signature mismatch, the salt is re-read from the store at most this often (ms). */
  reloadIntervalMs?: number;
}

/** The HMAC key of tokens: HKDF-SHA256 of the master key with the stored salt. */
export function deriveSigningKey(masterKey: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(masterKey, 'utf8'), salt, SIGNING_KEY_INFO, 32));
}

/**
 * Signs and verifies tokens with a key derived from the master key and the salt shared
 * through the MetadataStore. Another master key derives another signing key: the tokens
 * signed before a master-key change are refused (401 `invalid_api_key`).
 */
export class TokenSigner {
  private secret: Promise<Buffer> | null = null;
  private reloadedAt = 0;
  private readonly now: () => number;
  private readonly reloadIntervalMs: number;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly masterKey: string,
    options: TokenSignerOptions = {},
  ) {
    if (masterKey === '') throw new TypeError('The token signer needs the master key');
    this.now = options.now ?? Date.now;
    this.reloadIntervalMs = options.reloadIntervalMs ?? 5_000;
  }

  private loadSecret(): Promise<Buffer> {
    const loading = (async () => {
      let stored = await this.metadata.get(SIGNING_SALT_KEY);
      if (stored === null) {
        await this.metadata.set(SIGNING_SALT_KEY, randomBytes(32).toString('base64url'));
        // Read back: if another instance wrote its own meanwhile, both use the stored one.
        stored = await this.metadata.get(SIGNING_SALT_KEY);
      }
      if (!stored) throw new Error('The token signing salt could not be stored.');
      // The plain secret of earlier versions signs nothing any more: do not leave it readable.
      if (await this.metadata.get(LEGACY_SIGNING_SECRET_KEY)) await this.metadata.set(LEGACY_SIGNING_SECRET_KEY, '');
      return deriveSigningKey(this.masterKey, Buffer.from(stored, 'base64url'));
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

  /**
   * The payload of a well-signed, unexpired token within the maximum lifetime; throws 401
   * `invalid_api_key` or `token_expired`.
   */
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
    // A good signature is not enough: whoever holds the signing key (or a bug in minting)
    // must not make a token that outlives the longest lifetime tokens are minted with.
    if (!lifetimeWithinMaximum(payload, this.now())) throw refusals.tokenLifetimeInvalid();
    if (payload.exp * 1000 <= this.now()) throw refusals.tokenExpired();
    return payload;
  }

  private signatureMatches(body: string, given: Buffer, secret: Buffer): boolean {
    const expected = createHmac('sha256', secret).update(body).digest();
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** iat not ahead of now (beyond the clock skew), exp after iat and at most the maximum lifetime after it and after now. */
export function lifetimeWithinMaximum(payload: Pick<TokenPayload, 'iat' | 'exp'>, nowMs: number): boolean {
  const now = Math.floor(nowMs / 1000);
  const maximum = MAX_TOKEN_LIFETIME_MINUTES * 60;
  if (payload.iat > now + TOKEN_CLOCK_SKEW_SECONDS) return false;
  if (payload.exp <= payload.iat || payload.exp - payload.iat > maximum) return false;
  return payload.exp <= now + maximum + TOKEN_CLOCK_SKEW_SECONDS;
}
