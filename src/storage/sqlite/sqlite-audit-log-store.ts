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
import type { SqliteDatabase } from './connection.js';
import type { StatementCache } from './statement-cache.js';

const insertSql = `INSERT INTO audit_log (${auditColumnList}) VALUES (${auditColumns.map(() => '?').join(', ')})`;
const readHeadSql = 'SELECT last_seq AS lastSeq, last_hash AS lastHash FROM audit_chain_head WHERE id = 1';
const updateHeadSql = 'UPDATE audit_chain_head SET last_seq = ?, last_hash = ? WHERE id = 1';
const sqliteBool = (value: boolean): number => (value ? 1 : 0);

/** Conditions with `?` placeholders and their values. */
function conditionsOf(filter: AuditFilter | undefined): { conditions: string[]; values: unknown[] } {
  const values: unknown[] = [];
  const conditions = filterConditions(filter, (value) => {
    values.push(value);
    return '?';
  });
  return { conditions, values };
}

/**
 * The audit log in SQLite. `append` runs in one IMMEDIATE transaction: the write lock is
 * taken before the head is read, so several processes on the same file (each waiting up
 * to the busy timeout) still build one chain.
 */
export class SqliteAuditLogStore implements AuditLogStore {
  private appendTransaction: ((records: readonly AuditRecord[]) => void) | undefined;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly statements: StatementCache,
  ) {}

  async append(records: readonly AuditRecord[]): Promise<void> {
    if (!Array.isArray(records)) throw new TypeError('append takes an array of audit records');
    if (records.length === 0) return;
    records.forEach(validateAuditRecord);
    if (this.appendTransaction === undefined) {
      const transaction = this.database.transaction((batch: readonly AuditRecord[]) => {
        const head = this.statements.get<[], ChainHead>(readHeadSql).get();
        if (head === undefined) throw new Error('The audit chain head row is missing (audit_chain_head): the database was altered by hand');
        const chained = chainRecords(head, batch);
        const insert = this.statements.get<unknown[]>(insertSql);
        for (const record of chained.stored) insert.run(...auditValues(record, sqliteBool));
        this.statements.get<[number, string]>(updateHeadSql).run(chained.head.lastSeq, chained.head.lastHash);
      });
      this.appendTransaction = (batch) => transaction.immediate(batch);
    }
    this.appendTransaction(records);
  }

  async list(options: AuditListOptions): Promise<StoredAuditRecord[]> {
    if (typeof options !== 'object' || options === null) throw new TypeError('The audit list options must be an object');
    assertLimit(options.limit);
    const { conditions, values } = conditionsOf(options);
    if (options.before !== undefined) {
      assertSeq(options.before, 'before');
      conditions.push('seq < ?');
      values.push(options.before);
    }
    if (options.limit === 0) return [];
    const sql = `SELECT ${auditColumnList} FROM audit_log ${whereClause(conditions)} ORDER BY seq DESC LIMIT ?`;
    return this.statements.get<unknown[], AuditRow>(sql).all(...values, options.limit).map(auditFromRow);
  }

  async scan(afterSeq: number, limit: number, filter?: AuditFilter): Promise<StoredAuditRecord[]> {
    assertSeq(afterSeq, 'afterSeq');
    assertLimit(limit);
    const { conditions, values } = conditionsOf(filter);
    if (limit === 0) return [];
    conditions.unshift('seq > ?');
    const sql = `SELECT ${auditColumnList} FROM audit_log ${whereClause(conditions)} ORDER BY seq LIMIT ?`;
    return this.statements.get<unknown[], AuditRow>(sql).all(afterSeq, ...values, limit).map(auditFromRow);
  }

  async usage(options: { from?: number; to?: number; groupBy: UsageGroup[]; filter?: AuditFilter }): Promise<UsageRow[]> {
    if (typeof options !== 'object' || options === null) throw new TypeError('The usage options must be an object');
    const { conditions, values } = conditionsOf(options.filter);
    if (options.from !== undefined) {
      assertTime(options.from, 'from');
      conditions.push('created_at >= ?');
      values.push(options.from);
    }
    if (options.to !== undefined) {
      assertTime(options.to, 'to');
      conditions.push('created_at < ?');
      values.push(options.to);
    }
    const query = usageQuery(options.groupBy, conditions, (expression) => `COALESCE(SUM(${expression}), 0)`);
    return this.statements
      .get<unknown[], UsageResultRow>(query.sql)
      .all(...values)
      .map((row) => usageFromRow(row, query.groups));
  }

  async spendOf(keyId: string, from: number, to: number): Promise<number> {
    assertNonEmptyString(keyId, 'keyId');
    assertTime(from, 'from');
    assertTime(to, 'to');
    const sql = 'SELECT COALESCE(SUM(cost_micros), 0) AS spend FROM audit_log WHERE key_id IN (?, ?) AND created_at >= ? AND created_at < ?';
    return this.statements.get<[string, string, number, number], { spend: number }>(sql).get(keyId, `token:${keyId}`, from, to)?.spend ?? 0;
  }

  async deleteOlderThan(createdBefore: number): Promise<number> {
    assertTime(createdBefore, 'createdBefore');
    return this.statements.get<[number]>(retentionSql('?')).run(createdBefore).changes;
  }

  async eraseUser(user: string, erasedAt: number): Promise<number> {
    assertNonEmptyString(user, 'user');
    assertTime(erasedAt, 'erasedAt');
    const sql =
      'UPDATE audit_log SET end_user = NULL, client_ip = NULL, request_body = NULL, response_body = NULL, erased_at = ? WHERE end_user = ?';
    return this.statements.get<[number, string]>(sql).run(erasedAt, user).changes;
  }

  async count(): Promise<number> {
    return this.statements.get<[], { count: number }>('SELECT COUNT(*) AS count FROM audit_log').get()?.count ?? 0;
  }

  async head(): Promise<{ seq: number; hash: string }> {
    const row = this.statements.get<[], { lastSeq: number; lastHash: string }>(readHeadSql).get();
    if (row === undefined) throw new Error('The audit chain head row is missing (audit_chain_head): the database was altered by hand');
    return { seq: row.lastSeq, hash: row.lastHash };
  }
}
