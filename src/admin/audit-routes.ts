/**
 * The audit side of the admin API (mounted under `/admin`, admins only):
 * - `GET /admin/usage`: tokens, requests and cost, grouped by key, model, user and/or day;
 * - `GET /admin/logs`: audit records, newest first, filtered, cursor-paginated; with
 *   `format=jsonl` every matching record, oldest first, streamed as JSON lines (export);
 * - `DELETE /admin/users/{user}`: erases the personal data tied to an end-user id (GDPR);
 * - `GET /admin/audit/verify`: checks the hash chain.
 */
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { AppEnv } from '../app-env.js';
import { invalidRequest } from '../errors/gateway-error.js';
import type { AuditFilter, AuditLogStore, StoredAuditRecord, UsageGroup, UsageRow } from '../storage/spec.js';
import { verifyChain } from '../audit/verify-chain.js';

const GROUPS: readonly UsageGroup[] = ['key', 'model', 'user', 'day'];
const MAX_PAGE = 1000;
const EXPORT_BATCH = 500;

/** A time as unix seconds, unix milliseconds (13+ digits) or an ISO date / date-time. */
export function parseTime(value: string | undefined, param: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return value.length >= 13 ? Number(value) : Number(value) * 1000;
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw invalidRequest(`Invalid '${param}': expected unix seconds or an ISO 8601 date, got '${value}'.`, param);
  return parsed;
}

function parseLimit(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > MAX_PAGE) throw invalidRequest(`Invalid 'limit': expected an integer from 1 to ${MAX_PAGE}.`, 'limit');
  return limit;
}

function filterOf(query: Record<string, string | undefined>): AuditFilter {
  const filter: AuditFilter = {};
  if (query.key_id) filter.keyId = query.key_id;
  if (query.model) filter.model = query.model;
  if (query.user) filter.user = query.user;
  if (query.path) filter.path = query.path;
  if (query.status !== undefined) {
    if (!/^\d{3}$/.test(query.status)) throw invalidRequest("Invalid 'status': expected an HTTP status code.", 'status');
    filter.status = Number(query.status);
  }
  const from = parseTime(query.from, 'from');
  const to = parseTime(query.to, 'to');
  if (from !== undefined) filter.from = from;
  if (to !== undefined) filter.to = to;
  if (from !== undefined && to !== undefined && to <= from) throw invalidRequest("Invalid range: 'to' must be after 'from'.", 'to');
  return filter;
}

function usd(micros: number): number {
  return Math.round(micros) / 1_000_000;
}

function usageJson(row: UsageRow) {
  return {
    ...(row.key !== undefined ? { key_id: row.key } : {}),
    ...(row.model !== undefined ? { model: row.model } : {}),
    ...(row.user !== undefined ? { user: row.user } : {}),
    ...(row.day !== undefined ? { day: row.day } : {}),
    requests: row.requests,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    cached_tokens: row.cachedTokens,
    cost_usd: usd(row.costMicros),
  };
}

export function auditRecordJson(record: StoredAuditRecord) {
  return {
    seq: record.seq,
    request_id: record.requestId,
    created_at: record.createdAt,
    method: record.method,
    path: record.path,
    model: record.model,
    provider: record.provider,
    status: record.status,
    duration_ms: record.durationMs,
    prompt_tokens: record.promptTokens,
    completion_tokens: record.completionTokens,
    cached_tokens: record.cachedTokens,
    cost_usd: record.costMicros === null ? null : usd(record.costMicros),
    stream: record.stream,
    cache_hit: record.cacheHit,
    error_code: record.errorCode,
    key_id: record.keyId,
    user: record.user,
    client_ip: record.clientIp,
    request_body: record.requestBody,
    response_body: record.responseBody,
    pii: record.piiCounts ?? null,
    erased_at: record.erasedAt,
    prev_hash: record.prevHash,
    hash: record.hash,
  };
}

export function createAdminAuditRoutes(auditLog: AuditLogStore, now: () => number = Date.now): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  routes.get('/usage', async (context) => {
    const query = context.req.query();
    const groupBy = (query.group_by ?? 'key,model').split(',').map((group) => group.trim()).filter(Boolean);
    const unknown = groupBy.find((group) => !GROUPS.includes(group as UsageGroup));
    if (unknown !== undefined) throw invalidRequest(`Invalid 'group_by': '${unknown}' is not one of ${GROUPS.join(', ')}.`, 'group_by');
    const filter = filterOf(query);
    const { from, to, ...rest } = filter;
    const rows = await auditLog.usage({
      groupBy: groupBy as UsageGroup[],
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      filter: rest,
    });
    const totals = rows.reduce(
      (sum, row) => ({
        requests: sum.requests + row.requests,
        promptTokens: sum.promptTokens + row.promptTokens,
        completionTokens: sum.completionTokens + row.completionTokens,
        cachedTokens: sum.cachedTokens + row.cachedTokens,
        costMicros: sum.costMicros + row.costMicros,
      }),
      { requests: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0, costMicros: 0 },
    );
    return context.json({ object: 'list', group_by: groupBy, from: from ?? null, to: to ?? null, data: rows.map(usageJson), totals: usageJson(totals) });
  });

  routes.get('/logs', async (context) => {
    const query = context.req.query();
    const filter = filterOf(query);
    if (query.format === 'jsonl') {
      context.header('content-type', 'application/x-ndjson; charset=utf-8');
      context.header('content-disposition', 'attachment; filename="chatgate-audit.jsonl"');
      return stream(context, async (output) => {
        let after = 0;
        for (;;) {
          const page = await auditLog.scan(after, EXPORT_BATCH, filter);
          if (page.length === 0) break;
          await output.write(page.map((record) => JSON.stringify(auditRecordJson(record))).join('\n') + '\n');
          after = page.at(-1)!.seq;
          if (output.aborted) break;
        }
      });
    }
    if (query.format !== undefined && query.format !== 'json') throw invalidRequest("Invalid 'format': expected 'json' or 'jsonl'.", 'format');
    const limit = parseLimit(query.limit, 100);
    let before: number | undefined;
    if (query.before !== undefined) {
      if (!/^\d+$/.test(query.before)) throw invalidRequest("Invalid 'before': expected a record's seq.", 'before');
      before = Number(query.before);
    }
    const page = await auditLog.list({ ...filter, limit: limit + 1, ...(before !== undefined ? { before } : {}) });
    const data = page.slice(0, limit);
    const hasMore = page.length > limit;
    return context.json({ object: 'list', data: data.map(auditRecordJson), has_more: hasMore, next_before: hasMore ? data.at(-1)!.seq : null });
  });

  routes.delete('/users/:user', async (context) => {
    const user = context.req.param('user');
    const erased = await auditLog.eraseUser(user, now());
    return context.json({ object: 'user.erasure', user, erased_records: erased });
  });

  routes.get('/audit/verify', async (context) => {
    const result = await verifyChain(auditLog);
    return context.json({ object: 'audit.verification', ...result });
  });

  return routes;
}
