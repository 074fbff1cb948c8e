/**
 * The key fields of the admin API and the CLI (snake_case, as sent in JSON), their
 * validation, and the conversion to the stored `ApiKeySettings` and back to JSON.
 */
import { z } from 'zod';
import { defaultSettings } from '../auth/principal.js';

export { defaultSettings };
import type { ApiKeyRecord, ApiKeySettings } from '../storage/spec.js';
import { isValidIpRule } from './ip-access.js';
import { isValidOriginPattern } from './origins.js';
import { isValidPattern } from './patterns.js';
import { isValidGuardPattern } from '../guardrails/policy.js';

const modelPattern = z.string().refine(isValidPattern, 'expected a model name, or a prefix ending in *');
const endpointPattern = z
  .string()
  .refine((text) => text.startsWith('/') && isValidPattern(text), 'expected an API path such as /v1/chat/completions, or a prefix ending in * (/v1/*)');
const ipRule = z.string().refine(isValidIpRule, 'expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8, 2001:db8::/32)');
const originPattern = z
  .string()
  .refine(isValidOriginPattern, 'expected an origin such as https://app.example.com, or a host pattern such as *.example.com');

export const modelList = z.array(modelPattern).max(200);
export const endpointList = z.array(endpointPattern).max(200);
export const ipList = z.array(ipRule).max(200);
export const originList = z.array(originPattern).max(200);
export const limitValue = z.number().int().positive().max(1_000_000_000_000);
export const budgetPeriod = z.enum(['day', 'week', 'month', 'total']);
const metadata = z
  .record(z.string().min(1).max(64), z.string().max(1024))
  .refine((value) => Object.keys(value).length <= 50, 'at most 50 entries');
const project = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected 1-64 letters, digits, ".", "_" or "-"');

export const createKeyBody = z
  .object({
    name: z.string().min(1).max(200),
    project: project.optional(),
    admin: z.boolean().optional(),
    models: modelList.nullable().optional(),
    endpoints: endpointList.nullable().optional(),
    ips: ipList.nullable().optional(),
    origins: originList.nullable().optional(),
    rpm: limitValue.nullable().optional(),
    rpd: limitValue.nullable().optional(),
    tpm: limitValue.nullable().optional(),
    budget_usd: z.number().min(0).max(1e12).nullable().optional(),
    budget_period: budgetPeriod.optional(),
    queue_seconds: z.number().int().min(0).max(3600).optional(),
    expires_at: z.number().int().positive().max(1e11).nullable().optional(),
    expires_in_days: z.number().positive().max(36_500).optional(),
    metadata: metadata.optional(),
    /** 'off': this key's requests never use the response cache. */
    cache: z.enum(['default', 'off']).optional(),
    /** Deny patterns (regular expressions, case-insensitive) added to the models' `guardrails.deny_input`; null clears. */
    guardrails: z
      .object({ deny_input: z.array(z.string().max(1000).refine(isValidGuardPattern, 'expected a valid regular expression')).max(100) })
      .strict()
      .nullable()
      .optional(),
    /** PII policy of this key's requests: 'default' follows the model and the server (docs/pii.md). */
    pii: z.enum(['default', 'off', 'mask', 'pseudonymize', 'block']).optional(),
  })
  .strict();
export type CreateKeyBody = z.infer<typeof createKeyBody>;

export const updateKeyBody = createKeyBody
  .omit({ name: true })
  .extend({ name: z.string().min(1).max(200).optional() })
  .strict();
export type UpdateKeyBody = z.infer<typeof updateKeyBody>;

/** Applies the fields present in `body` to `settings` (null clears a restriction or limit). */
export function applySettings(settings: ApiKeySettings, body: UpdateKeyBody): ApiKeySettings {
  const next: ApiKeySettings = { ...settings, limits: { ...settings.limits }, metadata: { ...settings.metadata } };
  if (body.project !== undefined) next.project = body.project;
  if (body.admin !== undefined) next.admin = body.admin;
  if (body.models !== undefined) next.models = body.models;
  if (body.endpoints !== undefined) next.endpoints = body.endpoints;
  if (body.ips !== undefined) next.ips = body.ips;
  if (body.origins !== undefined) next.origins = body.origins;
  for (const name of ['rpm', 'rpd', 'tpm'] as const) {
    const value = body[name];
    if (value === null) delete next.limits[name];
    else if (value !== undefined) next.limits[name] = value;
  }
  if (body.budget_usd === null) next.budget = null;
  else if (body.budget_usd !== undefined) next.budget = { usd: body.budget_usd, period: body.budget_period ?? settings.budget?.period ?? 'month' };
  else if (body.budget_period !== undefined && next.budget) next.budget = { ...next.budget, period: body.budget_period };
  if (body.queue_seconds !== undefined) next.queueSeconds = body.queue_seconds;
  if (body.metadata !== undefined) next.metadata = body.metadata;
  if (body.cache !== undefined) next.cache = body.cache;
  if (body.guardrails === null) delete next.guardrails;
  else if (body.guardrails !== undefined) next.guardrails = { deny_input: body.guardrails.deny_input };
  if (body.pii !== undefined) next.pii = body.pii;
  return next;
}

export type KeyStatus = 'active' | 'expired' | 'revoked';

export function keyStatus(record: ApiKeyRecord, now: number): KeyStatus {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  return 'active';
}

const toSeconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));

/** The JSON shape of a key in the admin API and `--json` output (never the secret or its digest). */
export function keyToJson(record: ApiKeyRecord, now: number = Date.now()) {
  const { settings } = record;
  const previousActive = record.previousPrefix !== null && record.previousValidUntil !== null && record.previousValidUntil > now;
  return {
    object: 'api_key' as const,
    id: record.id,
    name: record.name,
    prefix: record.prefix,
    status: keyStatus(record, now),
    project: settings.project,
    admin: settings.admin,
    models: settings.models,
    endpoints: settings.endpoints,
    ips: settings.ips,
    origins: settings.origins,
    rpm: settings.limits.rpm ?? null,
    rpd: settings.limits.rpd ?? null,
    tpm: settings.limits.tpm ?? null,
    budget_usd: settings.budget?.usd ?? null,
    budget_period: settings.budget?.period ?? null,
    queue_seconds: settings.queueSeconds,
    metadata: settings.metadata,
    cache: settings.cache ?? 'default',
    guardrails: settings.guardrails ?? null,
    pii: settings.pii ?? 'default',
    created_at: toSeconds(record.createdAt),
    updated_at: toSeconds(record.updatedAt),
    expires_at: toSeconds(record.expiresAt),
    revoked_at: toSeconds(record.revokedAt),
    previous_prefix: previousActive ? record.previousPrefix : null,
    previous_valid_until: previousActive ? toSeconds(record.previousValidUntil) : null,
  };
}
export type KeyJson = ReturnType<typeof keyToJson>;
