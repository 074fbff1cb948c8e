import type pg from 'pg';
import type { AuditFilter, AuditListOptions, AuditLogStore, AuditRecord, StoredAuditRecord, UsageGroup, UsageRow } from '../spec.js';
import {
  assertLimit,
  assertNonEmptyString,
  assertSeq,
  assertTime,
  auditColumnList,
  auditColumns,
  auditFromRow,
  auditValues,
  chainRecords,
  filterConditions,
  retentionSql,
  usageFromRow,
  usageQuery,
  validateAuditRecord,
  whereClause,
  type AuditRow,
  type ChainHead,
  type UsageResultRow,
} from '../audit-records.js';
import { inTransaction, valuesPlaceholders } from './connection.js';

/** Rows per INSERT statement (25 columns; Postgres allows 65535 parameters). */
const rowsPerStatement = 500;
const postgresBool = (value: boolean): boolean => value;

/** Collects parameter values and hands out `$1`, `$2`, … */
class Parameters {
  readonly values: unknown[] = [];

  add = (value: unknown): string => {
    this.values.push(value);
    return `$${this.values.length}`;
  };
}

/**
 * The audit log in Postgres. `append` locks the chain head row (`SELECT … FOR UPDATE`) for
 * its transaction, so concurrent appends from any number of processes form one chain.
 */
export class PostgresAuditLogStore implements AuditLogStore {
  constructor(private readonly pool: pg.Pool) {}

  async append(records: readonly AuditRecord[]): Promise<void> {
    if (!Array.isArray(records)) throw new TypeError('append takes an array of audit records');
    if (records.length === 0) return;
    records.forEach(validateAuditRecord);
    await inTransaction(this.pool, async (client) => {
      const headResult = await client.query<ChainHead>(
        'SELECT last_seq AS "lastSeq", last_hash AS "lastHash" FROM audit_chain_head WHERE id = 1 FOR UPDATE',
      );
      const head = headResult.rows[0];
      if (head === undefined) throw new Error('The audit chain head row is missing (audit_chain_head): the database was altered by hand');
      const chained = chainRecords(head, records);
      for (let start = 0; start < chained.stored.length; start += rowsPerStatement) {
        const chunk = chained.stored.slice(start, start + rowsPerStatement);
        await client.query(
          `INSERT INTO audit_log (${auditColumnList}) VALUES ${valuesPlaceholders(chunk.length, auditColumns.length)}`,
          chunk.flatMap((record) => auditValues(record, postgresBool)),
        );
      }
      await client.query('UPDATE audit_chain_head SET last_seq = $1, last_hash = $2 WHERE id = 1', [chained.head.lastSeq, chained.head.lastHash]);
    });
  }

  async list(options: AuditListOptions): Promise<StoredAuditRecord[]> {
    if (typeof options !== 'object' || options === null) throw new TypeError('The audit list options must be an object');
    assertLimit(options.limit);
    const parameters = new Parameters();
    const conditions = filterConditions(options, parameters.add);
    if (options.before !== undefined) {
      assertSeq(options.before, 'before');
      conditions.push(`seq < ${parameters.add(options.before)}`);
    }
    if (options.limit === 0) return [];
    const sql = `SELECT ${auditColumnList} FROM audit_log ${whereClause(conditions)} ORDER BY seq DESC LIMIT ${parameters.add(options.limit)}`;
    const result = await this.pool.query<AuditRow>(sql, parameters.values);
    return result.rows.map(auditFromRow);
  }

  async scan(afterSeq: number, limit: number, filter?: AuditFilter): Promise<StoredAuditRecord[]> {
    assertSeq(afterSeq, 'afterSeq');
    assertLimit(limit);
    const parameters = new Parameters();
    const conditions = [`seq > ${parameters.add(afterSeq)}`, ...filterConditions(filter, parameters.add)];
    if (limit === 0) return [];
    const sql = `SELECT ${auditColumnList} FROM audit_log ${whereClause(conditions)} ORDER BY seq LIMIT ${parameters.add(limit)}`;
    const result = await this.pool.query<AuditRow>(sql, parameters.values);
    return result.rows.map(auditFromRow);
  }

  async usage(options: { from?: number; to?: number; groupBy: UsageGroup[]; filter?: AuditFilter }): Promise<UsageRow[]> {
    if (typeof options !== 'object' || options === null) throw new TypeError('The usage options must be an object');
    const parameters = new Parameters();
    const conditions = filterConditions(options.filter, parameters.add);
    if (options.from !== undefined) {
      assertTime(options.from, 'from');
      conditions.push(`created_at >= ${parameters.add(options.from)}`);
    }
    if (options.to !== undefined) {
      assertTime(options.to, 'to');
      conditions.push(`created_at < ${parameters.add(options.to)}`);
    }
    const query = usageQuery(options.groupBy, conditions, (expression) => `COALESCE(SUM(${expression}), 0)::bigint`);
    const result = await this.pool.query<UsageResultRow>(query.sql, parameters.values);
    return result.rows.map((row) => usageFromRow(row, query.groups));
  }

  async spendOf(keyId: string, from: number, to: number): Promise<number> {
    assertNonEmptyString(keyId, 'keyId');
    assertTime(from, 'from');
    assertTime(to, 'to');
    const result = await this.pool.query<{ spend: number }>(
      'SELECT COALESCE(SUM(cost_micros), 0)::bigint AS spend FROM audit_log WHERE key_id IN ($1, $2) AND created_at >= $3 AND created_at < $4',
      [keyId, `token:${keyId}`, from, to],
    );
    return result.rows[0]?.spend ?? 0;
  }

  async deleteOlderThan(createdBefore: number): Promise<number> {
    assertTime(createdBefore, 'createdBefore');
    const result = await this.pool.query(retentionSql('$1'), [createdBefore]);
    return result.rowCount ?? 0;
  }

  async eraseUser(user: string, erasedAt: number): Promise<number> {
    assertNonEmptyString(user, 'user');
    assertTime(erasedAt, 'erasedAt');
    const result = await this.pool.query(
      'UPDATE audit_log SET end_user = NULL, client_ip = NULL, request_body = NULL, response_body = NULL, erased_at = $1 WHERE end_user = $2',
      [erasedAt, user],
    );
    return result.rowCount ?? 0;
  }

  async count(): Promise<number> {
    const result = await this.pool.query<{ count: number }>('SELECT COUNT(*) AS count FROM audit_log');
    return result.rows[0]?.count ?? 0;
  }

  async head(): Promise<{ seq: number; hash: string }> {
    const result = await this.pool.query<{ lastSeq: number; lastHash: string }>('SELECT last_seq AS "lastSeq", last_hash AS "lastHash" FROM audit_chain_head WHERE id = 1');
    const row = result.rows[0];
    if (row === undefined) throw new Error('The audit chain head row is missing (audit_chain_head): the database was altered by hand');
    return { seq: row.lastSeq, hash: row.lastHash };
  }
}
