import type pg from 'pg';
import { assertLimit } from '../audit-records.js';
import type { RequestLogListOptions, RequestLogRecord, RequestLogStore } from '../spec.js';
import { inTransaction, valuesPlaceholders } from './connection.js';

const columns =
  'request_id, created_at, method, path, model, status, duration_ms, prompt_tokens, completion_tokens, stream, error_code, key_id, client_ip';
const columnCount = 13;
/** Rows per INSERT statement (Postgres allows 65535 parameters). */
const rowsPerStatement = 1000;

interface RequestLogRow {
  request_id: string;
  created_at: number;
  method: string;
  path: string;
  model: string | null;
  status: number;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  stream: boolean;
  error_code: string | null;
  key_id: string | null;
  client_ip: string | null;
}

function values(record: RequestLogRecord): unknown[] {
  return [
    record.requestId,
    record.createdAt,
    record.method,
    record.path,
    record.model ?? null,
    record.status,
    record.durationMs,
    record.promptTokens ?? null,
    record.completionTokens ?? null,
    record.stream,
    record.errorCode ?? null,
    record.keyId ?? null,
    record.clientIp ?? null,
  ];
}

function fromRow(row: RequestLogRow): RequestLogRecord {
  return {
    requestId: row.request_id,
    createdAt: row.created_at,
    method: row.method,
    path: row.path,
    model: row.model,
    status: row.status,
    durationMs: row.duration_ms,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    stream: row.stream,
    errorCode: row.error_code,
    keyId: row.key_id,
    clientIp: row.client_ip,
  };
}

export class PostgresRequestLogStore implements RequestLogStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertMany(records: readonly RequestLogRecord[]): Promise<void> {
    if (records.length === 0) return;
    await inTransaction(this.pool, async (client) => {
      for (let start = 0; start < records.length; start += rowsPerStatement) {
        const chunk = records.slice(start, start + rowsPerStatement);
        await client.query(`INSERT INTO request_log (${columns}) VALUES ${valuesPlaceholders(chunk.length, columnCount)}`, chunk.flatMap(values));
      }
    });
  }

  async list(options: RequestLogListOptions): Promise<RequestLogRecord[]> {
    const { limit, before } = options;
    assertLimit(limit);
    if (limit === 0) return [];
    const result =
      before === undefined
        ? await this.pool.query<RequestLogRow>(`SELECT ${columns} FROM request_log ORDER BY created_at DESC, request_id DESC, id DESC LIMIT $1`, [limit])
        : await this.pool.query<RequestLogRow>(
            `SELECT ${columns} FROM request_log WHERE (created_at, request_id) < ($1, $2) ORDER BY created_at DESC, request_id DESC, id DESC LIMIT $3`,
            [before.createdAt, before.requestId, limit],
          );
    return result.rows.map(fromRow);
  }

  async count(): Promise<number> {
    const result = await this.pool.query<{ count: number }>('SELECT COUNT(*) AS count FROM request_log');
    return result.rows[0]?.count ?? 0;
  }
}
