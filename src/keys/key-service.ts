/**
 * Key management over a KeyStore: create (the secret is returned once), list, get, update
 * (PATCH semantics), revoke and rotate (a new secret; the old one stays valid for a grace
 * period). Used by the admin API and the `chatgate keys` CLI. Inputs are validated here,
 * so both front ends refuse the same things with the same 400s.
 */
import { GatewayError, invalidRequest, notFound } from '../errors/gateway-error.js';
import { formatParam, issueToError } from '../errors/validation-error.js';
import { pathOfUnstorableText } from '../http/read-body.js';
import { KeyConflictError, type ApiKeyRecord, type KeyStore } from '../storage/spec.js';
import { applySettings, createKeyBody, defaultSettings, updateKeyBody, type CreateKeyBody, type UpdateKeyBody } from './key-settings.js';
import { generateKeyId, generateKeySecret, hashSecret, isKeyId, keyPrefixOf } from './secrets.js';

export const DEFAULT_GRACE_SECONDS = 24 * 60 * 60;
export const MAX_GRACE_SECONDS = 90 * 24 * 60 * 60;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface KeyServiceOptions {
  now?: () => number;
  /** Called after every change (e.g. to drop the authenticator's cache at once). */
  onChange?: () => void;
}

export interface KeyWithSecret {
  record: ApiKeyRecord;
  /** The whole secret: shown once, never stored. */
  secret: string;
}

export interface KeyPage {
  records: ApiKeyRecord[];
  hasMore: boolean;
}

function parseBody<T>(schema: { safeParse(input: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } }, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
  const unstorable = pathOfUnstorableText(body);
  if (unstorable !== null) {
    const param = JSON.stringify(formatParam(unstorable)).slice(1, -1);
    throw invalidRequest(`Invalid value for '${param}': text must not contain NUL characters (\\u0000) or unpaired surrogates (\\ud800).`, param, 'invalid_value');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw issueToError(result.error.issues[0] as Parameters<typeof issueToError>[0]);
}

export class KeyService {
  private readonly now: () => number;
  private readonly onChange: () => void;

  constructor(
    private readonly store: KeyStore,
    options: KeyServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => undefined);
  }

  private expiryFrom(body: Pick<CreateKeyBody, 'expires_at' | 'expires_in_days'>, now: number): number | null | undefined {
    if (body.expires_at !== undefined && body.expires_in_days !== undefined) {
      throw invalidRequest("Give either 'expires_at' or 'expires_in_days', not both.", 'expires_at');
    }
    if (body.expires_in_days !== undefined) return now + Math.round(body.expires_in_days * DAY_MS);
    if (body.expires_at === undefined || body.expires_at === null) return body.expires_at;
    const expiresAt = body.expires_at * 1000;
    if (expiresAt <= now) throw invalidRequest("Invalid 'expires_at': the expiry must be in the future (Unix seconds).", 'expires_at', 'invalid_value');
    return expiresAt;
  }

  private checkBudget(body: UpdateKeyBody, hasBudget: boolean): void {
    if (body.budget_period !== undefined && (body.budget_usd === null || (body.budget_usd === undefined && !hasBudget))) {
      throw invalidRequest("'budget_period' needs a budget: give 'budget_usd' too.", 'budget_period');
    }
  }

  async create(input: unknown): Promise<KeyWithSecret> {
    const body = parseBody<CreateKeyBody>(createKeyBody, input);
    const now = this.now();
    const expiresAt = this.expiryFrom(body, now) ?? null;
    this.checkBudget(body, false);
    const settings = applySettings(defaultSettings(), body);
    for (let attempt = 0; ; attempt += 1) {
      const secret = generateKeySecret();
      const record: ApiKeyRecord = {
        id: generateKeyId(),
        name: body.name,
        prefix: keyPrefixOf(secret),
        secretHash: hashSecret(secret),
        previousPrefix: null,
        previousSecretHash: null,
        previousValidUntil: null,
        settings,
        createdAt: now,
        updatedAt: now,
        expiresAt,
        revokedAt: null,
      };
      try {
        await this.store.create(record);
      } catch (error) {
        // A prefix or id collision (1 in 62^8): draw again.
        if (error instanceof KeyConflictError && attempt < 3) continue;
        throw error;
      }
      this.onChange();
      return { record, secret };
    }
  }

  async list(options: { limit?: number; after?: string; includeRevoked?: boolean } = {}): Promise<KeyPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidRequest("Invalid 'limit': expected an integer from 1 to 100.", 'limit', 'invalid_value');
    if (options.after !== undefined && !isKeyId(options.after)) throw invalidRequest("Invalid 'after': expected a key id (key_…).", 'after', 'invalid_value');
    const records = await this.store.list({
      limit: limit + 1,
      ...(options.after !== undefined ? { after: options.after } : {}),
      includeRevoked: options.includeRevoked ?? false,
    });
    return { records: records.slice(0, limit), hasMore: records.length > limit };
  }

  async get(id: string): Promise<ApiKeyRecord> {
    const record = isKeyId(id) ? await this.store.get(id) : null;
    if (!record) throw notFound(`No API key with id '${JSON.stringify(id.slice(0, 64)).slice(1, -1)}'.`, 'id');
    return record;
  }

  private async save(record: ApiKeyRecord): Promise<ApiKeyRecord> {
    const saved = await this.store.update(record);
    if (!saved) throw notFound(`No API key with id '${record.id}'.`, 'id');
    this.onChange();
    return saved;
  }

  private static refuseRevoked(record: ApiKeyRecord): void {
    if (record.revokedAt !== null) {
      throw new GatewayError({ status: 409, type: 'invalid_request_error', code: 'key_revoked', message: `The API key '${record.id}' is revoked and cannot be changed.` });
    }
  }

  async update(id: string, input: unknown): Promise<ApiKeyRecord> {
    const body = parseBody<UpdateKeyBody>(updateKeyBody, input);
    const record = await this.get(id);
    KeyService.refuseRevoked(record);
    const now = this.now();
    const expiresAt = this.expiryFrom(body, now);
    this.checkBudget(body, record.settings.budget !== null);
    return this.save({
      ...record,
      name: body.name ?? record.name,
      settings: applySettings(record.settings, body),
      expiresAt: expiresAt === undefined ? record.expiresAt : expiresAt,
      updatedAt: Math.max(now, record.updatedAt + 1),
    });
  }

  /** Revokes the key (idempotent: revoking a revoked key returns it unchanged). */
  async revoke(id: string): Promise<ApiKeyRecord> {
    const record = await this.get(id);
    if (record.revokedAt !== null) return record;
    const now = this.now();
    return this.save({ ...record, revokedAt: now, updatedAt: Math.max(now, record.updatedAt + 1) });
  }

  /**
   * Issues a new secret. The current one stays valid for `graceSeconds` (0: ends at once);
   * a secret kept by an earlier rotation is dropped.
   */
  async rotate(id: string, graceSeconds: number = DEFAULT_GRACE_SECONDS): Promise<KeyWithSecret> {
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw invalidRequest(`Invalid 'grace_seconds': expected an integer from 0 to ${MAX_GRACE_SECONDS}.`, 'grace_seconds', 'invalid_value');
    }
    const record = await this.get(id);
    KeyService.refuseRevoked(record);
    const now = this.now();
    for (let attempt = 0; ; attempt += 1) {
      const secret = generateKeySecret();
      try {
        const saved = await this.save({
          ...record,
          prefix: keyPrefixOf(secret),
          secretHash: hashSecret(secret),
          previousPrefix: graceSeconds > 0 ? record.prefix : null,
          previousSecretHash: graceSeconds > 0 ? record.secretHash : null,
          previousValidUntil: graceSeconds > 0 ? now + graceSeconds * 1000 : null,
          updatedAt: Math.max(now, record.updatedAt + 1),
        });
        return { record: saved, secret };
      } catch (error) {
        if (error instanceof KeyConflictError && attempt < 3) continue;
        throw error;
      }
    }
  }
}
