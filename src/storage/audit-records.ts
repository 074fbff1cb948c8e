/**
 * The dialect-neutral half of the audit log stores: input checks, chaining a batch onto
 * the head, the SQL of filters and usage grouping (only the placeholders differ between
 * SQLite and Postgres), and turning rows back into records.
 */
import { chainHash, personalDigest } from './audit-chain.js';
import type { AuditFilter, AuditRecord, StoredAuditRecord, UsageGroup, UsageRow } from './spec.js';
import { assertTime, describe } from './validate.js';

/** Moved to validate.ts; this re-export goes when the importers switch (issue 14, P1-final). */
export { assertLimit, assertNonEmptyString, assertSeq, assertTime } from './validate.js';

export const DAY_MS = 86_400_000;

/** Column order of an insert; `end_user` is AuditRecord.user. */
export const auditColumns = [
  'seq',
  'request_id',
  'created_at',
  'method',
  'path',
  'model',
  'provider',
  'status',
  'duration_ms',
  'prompt_tokens',
  'completion_tokens',
  'cached_tokens',
  'cost_micros',
  'stream',
  'cache_hit',
  'error_code',
  'key_id',
  'end_user',
  'client_ip',
  'request_body',
  'response_body',
  'pii_counts',
  'personal_digest',
  'prev_hash',
  'hash',
  'erased_at',
] as const;

export const auditColumnList = auditColumns.join(', ');

export interface AuditRow {
  seq: number;
  request_id: string;
  created_at: number;
  method: string;
  path: string;
  model: string | null;
  provider: string | null;
  status: number;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cached_tokens: number | null;
  cost_micros: number | null;
  /** 0/1 in SQLite, boolean in Postgres. */
  stream: number | boolean;
  cache_hit: number | boolean | null;
  error_code: string | null;
  key_id: string | null;
  end_user: string | null;
  client_ip: string | null;
  request_body: string | null;
  response_body: string | null;
  /** Absent in rows read by code older than migration 4. */
  pii_counts?: string | null;
  personal_digest: string;
  prev_hash: string;
  hash: string;
  erased_at: number | null;
}

/**
 * Checks one record before it is hashed and stored, so that what is read back hashes to
 * the same value (no NaN, no fractions in integer columns, no strings for numbers).
 */
export function validateAuditRecord(record: AuditRecord, index: number): void {
  const where = `audit record #${index}`;
  if (typeof record !== 'object' || record === null) throw new TypeError(`${where} is not an object`);
  const fail = (field: string, expected: string, value: unknown): never => {
    throw new TypeError(`${where}: ${field} must be ${expected}, got ${describe(value)}`);
  };
  const string = (field: keyof AuditRecord, nullable: boolean): void => {
    const value = record[field];
    if (nullable && (value === null || value === undefined)) return;
    if (typeof value !== 'string') fail(field, nullable ? 'a string or null' : 'a string', value);
    if ((value as string).includes('\u0000')) fail(field, 'free of NUL characters', value);
  };
  const integer = (field: keyof AuditRecord, nullable: boolean): void => {
    const value = record[field];
    if (nullable && (value === null || value === undefined)) return;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      fail(field, nullable ? 'a non-negative integer or null' : 'a non-negative integer', value);
    }
  };
  string('requestId', false);
  if (typeof record.createdAt !== 'number' || !Number.isSafeInteger(record.createdAt) || record.createdAt < 0) {
    fail('createdAt', 'a non-negative integer (ms since the Unix epoch)', record.createdAt);
  }
  string('method', false);
  string('path', false);
  string('model', true);
  string('provider', true);
  if (typeof record.status !== 'number' || !Number.isInteger(record.status) || record.status < 0 || record.status > 999) {
    fail('status', 'an HTTP status (integer 0–999)', record.status);
  }
  if (typeof record.durationMs !== 'number' || !Number.isFinite(record.durationMs) || record.durationMs < 0) {
    fail('durationMs', 'a finite non-negative number', record.durationMs);
  }
  integer('promptTokens', true);
  integer('completionTokens', true);
  integer('cachedTokens', true);
  const cost = record.costMicros;
  if (cost !== null && cost !== undefined && (typeof cost !== 'number' || !Number.isSafeInteger(cost))) {
    fail('costMicros', 'an integer or null', cost);
  }
  if (typeof record.stream !== 'boolean') fail('stream', 'a boolean', record.stream);
  if (record.cacheHit !== null && record.cacheHit !== undefined && typeof record.cacheHit !== 'boolean') {
    fail('cacheHit', 'a boolean or null', record.cacheHit);
  }
  string('errorCode', true);
  string('keyId', true);
  string('user', true);
  string('clientIp', true);
  string('requestBody', true);
  string('responseBody', true);
  string('piiCounts', true);
  if (typeof record.piiCounts === 'string' && !/^[a-z][a-z0-9_]*=\d+(,[a-z][a-z0-9_]*=\d+)*$/.test(record.piiCounts)) {
    fail('piiCounts', 'kinds and counts such as email=2,card=1', record.piiCounts);
  }
}

/** The record with every absent value as null and -0 as 0, exactly as it will be read back. */
function normalize(record: AuditRecord): AuditRecord {
  return {
    requestId: record.requestId,
    createdAt: record.createdAt,
    method: record.method,
    path: record.path,
    model: record.model ?? null,
    provider: record.provider ?? null,
    status: record.status,
    durationMs: record.durationMs === 0 ? 0 : record.durationMs,
    promptTokens: record.promptTokens ?? null,
    completionTokens: record.completionTokens ?? null,
    cachedTokens: record.cachedTokens ?? null,
    costMicros: record.costMicros === 0 ? 0 : (record.costMicros ?? null),
    stream: record.stream,
    cacheHit: record.cacheHit ?? null,
    errorCode: record.errorCode ?? null,
    keyId: record.keyId ?? null,
    user: record.user ?? null,
    clientIp: record.clientIp ?? null,
    requestBody: record.requestBody ?? null,
    responseBody: record.responseBody ?? null,
    piiCounts: record.piiCounts ?? null,
  };
}

export interface ChainHead {
  lastSeq: number;
  lastHash: string;
}

/** Validates the batch and links it onto `head`, in order; returns the records and the new head. */
export function chainRecords(head: ChainHead, records: readonly AuditRecord[]): { stored: StoredAuditRecord[]; head: ChainHead } {
  let { lastSeq, lastHash } = head;
  const stored: StoredAuditRecord[] = [];
  for (const record of records) {
    const normalized = normalize(record);
    const seq = lastSeq + 1;
    const digest = personalDigest(normalized);
    const hash = chainHash(lastHash, seq, normalized, digest);
    stored.push({ ...normalized, seq, personalDigest: digest, prevHash: lastHash, hash, erasedAt: null });
    lastSeq = seq;
    lastHash = hash;
  }
  return { stored, head: { lastSeq, lastHash } };
}

/** The values of a stored record in `auditColumns` order; booleans as the dialect wants them. */
export function auditValues(record: StoredAuditRecord, bool: (value: boolean) => unknown): unknown[] {
  return [
    record.seq,
    record.requestId,
    record.createdAt,
    record.method,
    record.path,
    record.model,
    record.provider,
    record.status,
    record.durationMs,
    record.promptTokens,
    record.completionTokens,
    record.cachedTokens,
    record.costMicros,
    bool(record.stream),
    record.cacheHit === null ? null : bool(record.cacheHit),
    record.errorCode,
    record.keyId,
    record.user,
    record.clientIp,
    record.requestBody,
    record.responseBody,
    record.piiCounts ?? null,
    record.personalDigest,
    record.prevHash,
    record.hash,
    record.erasedAt,
  ];
}

export function auditFromRow(row: AuditRow): StoredAuditRecord {
  return {
    seq: row.seq,
    requestId: row.request_id,
    createdAt: row.created_at,
    method: row.method,
    path: row.path,
    model: row.model,
    provider: row.provider,
    status: row.status,
    durationMs: row.duration_ms,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    cachedTokens: row.cached_tokens,
    costMicros: row.cost_micros,
    stream: row.stream === true || row.stream === 1,
    cacheHit: row.cache_hit === null ? null : row.cache_hit === true || row.cache_hit === 1,
    errorCode: row.error_code,
    keyId: row.key_id,
    user: row.end_user,
    clientIp: row.client_ip,
    requestBody: row.request_body,
    responseBody: row.response_body,
    piiCounts: row.pii_counts ?? null,
    personalDigest: row.personal_digest,
    prevHash: row.prev_hash,
    hash: row.hash,
    erasedAt: row.erased_at,
  };
}

/** Builds SQL conditions; `placeholder(value)` records the value and returns `?` or `$n`. */
export type Placeholder = (value: unknown) => string;

/** The conditions of a filter (ANDed), after validating it. */
export function filterConditions(filter: AuditFilter | undefined, placeholder: Placeholder): string[] {
  const conditions: string[] = [];
  if (filter === undefined || filter === null) return conditions;
  if (typeof filter !== 'object') throw new TypeError('The audit filter must be an object');
  const text = (value: unknown, name: string, column: string): void => {
    if (value === undefined) return;
    if (typeof value !== 'string') throw new TypeError(`filter.${name} must be a string, got ${describe(value)}`);
    conditions.push(`${column} = ${placeholder(value)}`);
  };
  text(filter.requestId, 'requestId', 'request_id');
  text(filter.keyId, 'keyId', 'key_id');
  text(filter.model, 'model', 'model');
  text(filter.user, 'user', 'end_user');
  text(filter.path, 'path', 'path');
  if (filter.status !== undefined) {
    if (typeof filter.status !== 'number' || !Number.isInteger(filter.status)) {
      throw new TypeError(`filter.status must be an integer, got ${describe(filter.status)}`);
    }
    conditions.push(`status = ${placeholder(filter.status)}`);
  }
  if (filter.from !== undefined) {
    assertTime(filter.from, 'filter.from');
    conditions.push(`created_at >= ${placeholder(filter.from)}`);
  }
  if (filter.to !== undefined) {
    assertTime(filter.to, 'filter.to');
    conditions.push(`created_at < ${placeholder(filter.to)}`);
  }
  return conditions;
}

export function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

const groupColumns: Record<UsageGroup, { expression: string; alias: string }> = {
  key: { expression: 'key_id', alias: 'group_key' },
  model: { expression: 'model', alias: 'group_model' },
  user: { expression: 'end_user', alias: 'group_user' },
  // Integer division: both dialects truncate, and created_at is never negative.
  day: { expression: `created_at / ${DAY_MS}`, alias: 'group_day' },
};

export interface UsageQuery {
  sql: string;
  groups: UsageGroup[];
}

/** The usage query over `audit_log`, for the given conditions (already built with `placeholder`). */
export function usageQuery(groupBy: readonly UsageGroup[], conditions: readonly string[], bigintSum: (expression: string) => string): UsageQuery {
  if (!Array.isArray(groupBy)) throw new TypeError('groupBy must be an array of key, model, user, day');
  const groups: UsageGroup[] = [];
  for (const group of groupBy) {
    if (!Object.hasOwn(groupColumns, group)) {
      throw new RangeError(`Unknown usage group ${describe(group)}: use key, model, user or day`);
    }
    if (!groups.includes(group)) groups.push(group);
  }
  const selected = groups.map((group) => `${groupColumns[group].expression} AS ${groupColumns[group].alias}`);
  const sums = [
    'COUNT(*) AS requests',
    `${bigintSum('prompt_tokens')} AS prompt_tokens`,
    `${bigintSum('completion_tokens')} AS completion_tokens`,
    `${bigintSum('cached_tokens')} AS cached_tokens`,
    `${bigintSum('cost_micros')} AS cost_micros`,
  ];
  const grouped = groups.map((group) => groupColumns[group].alias);
  const sql =
    `SELECT ${[...selected, ...sums].join(', ')} FROM audit_log ${whereClause(conditions)}` +
    (grouped.length === 0 ? '' : ` GROUP BY ${grouped.join(', ')} ORDER BY ${grouped.map((alias) => `${alias} NULLS FIRST`).join(', ')}`);
  return { sql, groups };
}

export interface UsageResultRow {
  group_key?: string | null;
  group_model?: string | null;
  group_user?: string | null;
  group_day?: number;
  requests: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cached_tokens: number | null;
  cost_micros: number | null;
}

export function usageFromRow(row: UsageResultRow, groups: readonly UsageGroup[]): UsageRow {
  const result: UsageRow = {
    requests: Number(row.requests),
    promptTokens: Number(row.prompt_tokens ?? 0),
    completionTokens: Number(row.completion_tokens ?? 0),
    cachedTokens: Number(row.cached_tokens ?? 0),
    costMicros: Number(row.cost_micros ?? 0),
  };
  for (const group of groups) {
    if (group === 'key') result.key = row.group_key ?? null;
    else if (group === 'model') result.model = row.group_model ?? null;
    else if (group === 'user') result.user = row.group_user ?? null;
    else result.day = new Date(Number(row.group_day) * DAY_MS).toISOString().slice(0, 10);
  }
  return result;
}

/**
 * Retention deletes a prefix of the chain: every record before the first one created at or
 * after the cutoff. Records are appended roughly but not exactly in `createdAt` order (a
 * long request is recorded after shorter ones that arrived later), and deleting strictly by
 * `createdAt` could cut a hole in the chain; this way what remains always verifies.
 * `cutoff` is the placeholder of the cutoff time.
 */
export function retentionSql(cutoff: string): string {
  return (
    'DELETE FROM audit_log WHERE seq < COALESCE(' +
    `(SELECT seq FROM audit_log WHERE created_at >= ${cutoff} ORDER BY seq LIMIT 1), ` +
    '(SELECT last_seq + 1 FROM audit_chain_head WHERE id = 1))'
  );
}
