/**
 * The dialect-neutral half of the key stores: input checks and row mapping.
 */
import { assertLimit } from './audit-records.js';
import type { ApiKeyRecord, ApiKeySettings, KeyListOptions } from './spec.js';

export const keyColumnList =
  'id, name, prefix, secret_hash, previous_prefix, previous_secret_hash, previous_valid_until, settings, created_at, updated_at, expires_at, revoked_at';

export interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  previous_prefix: string | null;
  previous_secret_hash: string | null;
  previous_valid_until: number | null;
  /** JSON text in SQLite, already parsed (JSONB) in Postgres. */
  settings: string | Record<string, unknown>;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null || typeof value !== 'object' ? String(value) : typeof value;
}

/** Throws a TypeError naming the field when the record cannot be stored as it is. */
export function validateKeyRecord(record: ApiKeyRecord): void {
  if (typeof record !== 'object' || record === null) throw new TypeError('The key record must be an object');
  const where = `key ${typeof record.id === 'string' ? JSON.stringify(record.id) : '(no id)'}`;
  const fail = (field: string, expected: string, value: unknown): never => {
    throw new TypeError(`${where}: ${field} must be ${expected}, got ${describe(value)}`);
  };
  for (const field of ['id', 'prefix', 'secretHash'] as const) {
    if (typeof record[field] !== 'string' || record[field] === '') fail(field, 'a non-empty string', record[field]);
  }
  if (typeof record.name !== 'string') fail('name', 'a string', record.name);
  for (const field of ['previousPrefix', 'previousSecretHash'] as const) {
    const value = record[field];
    if (value !== null && value !== undefined && (typeof value !== 'string' || value === '')) fail(field, 'a non-empty string or null', value);
  }
  for (const field of ['createdAt', 'updatedAt'] as const) {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(field, 'a non-negative integer (ms)', value);
  }
  for (const field of ['previousValidUntil', 'expiresAt', 'revokedAt'] as const) {
    const value = record[field];
    if (value !== null && value !== undefined && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)) {
      fail(field, 'a non-negative integer (ms) or null', value);
    }
  }
  if (typeof record.settings !== 'object' || record.settings === null || Array.isArray(record.settings)) {
    fail('settings', 'an object', record.settings);
  }
}

export function settingsJson(record: ApiKeyRecord): string {
  const text = JSON.stringify(record.settings);
  if (text.includes('\\u0000')) throw new TypeError(`key ${JSON.stringify(record.id)}: settings must not contain NUL characters`);
  return text;
}

/** The values in `keyColumnList` order, settings as JSON text. */
export function keyValues(record: ApiKeyRecord): unknown[] {
  return [
    record.id,
    record.name,
    record.prefix,
    record.secretHash,
    record.previousPrefix ?? null,
    record.previousSecretHash ?? null,
    record.previousValidUntil ?? null,
    settingsJson(record),
    record.createdAt,
    record.updatedAt,
    record.expiresAt ?? null,
    record.revokedAt ?? null,
  ];
}

export function keyFromRow(row: KeyRow): ApiKeyRecord {
  let settings: ApiKeySettings;
  if (typeof row.settings === 'string') {
    try {
      settings = JSON.parse(row.settings) as ApiKeySettings;
    } catch (error) {
      throw new Error(`The stored settings of key ${row.id} are not valid JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  } else {
    settings = row.settings as unknown as ApiKeySettings;
  }
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    secretHash: row.secret_hash,
    previousPrefix: row.previous_prefix,
    previousSecretHash: row.previous_secret_hash,
    previousValidUntil: row.previous_valid_until,
    settings,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export function validateKeyListOptions(options: KeyListOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('The key list options must be an object');
  assertLimit(options.limit);
  if (options.after !== undefined && typeof options.after !== 'string') {
    throw new TypeError(`after must be a key id (string), got ${describe(options.after)}`);
  }
}

export function validateKeyId(id: unknown, name = 'id'): asserts id is string {
  if (typeof id !== 'string') throw new TypeError(`${name} must be a string, got ${describe(id)}`);
}

/** The conflict message for a unique violation: which of id and prefix exists. */
export function conflictMessage(record: ApiKeyRecord, detail: string): string {
  const lower = detail.toLowerCase();
  if (lower.includes('prefix')) return `A key with the prefix ${record.prefix} already exists`;
  return `A key with the id ${record.id} already exists`;
}
