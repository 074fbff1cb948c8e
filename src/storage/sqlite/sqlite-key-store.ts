import { KeyConflictError, type ApiKeyRecord, type KeyListOptions, type KeyStore } from '../spec.js';
import { conflictMessage, keyColumnList, keyFromRow, keyValues, validateKeyId, validateKeyListOptions, validateKeyRecord, type KeyRow } from '../key-records.js';
import type { StatementCache } from './statement-cache.js';

const insertSql = `INSERT INTO api_keys (${keyColumnList}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const updateSql =
  'UPDATE api_keys SET name = ?, prefix = ?, secret_hash = ?, previous_prefix = ?, previous_secret_hash = ?, ' +
  'previous_valid_until = ?, settings = ?, created_at = ?, updated_at = ?, expires_at = ?, revoked_at = ? WHERE id = ?';

function isUniqueViolation(error: unknown): error is Error {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** API keys in SQLite: the indexed columns plus the settings as JSON text. */
export class SqliteKeyStore implements KeyStore {
  constructor(private readonly statements: StatementCache) {}

  async create(record: ApiKeyRecord): Promise<void> {
    validateKeyRecord(record);
    const values = keyValues(record);
    try {
      this.statements.get<unknown[]>(insertSql).run(...values);
    } catch (error) {
      if (isUniqueViolation(error)) throw new KeyConflictError(conflictMessage(record, error.message));
      throw error;
    }
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    validateKeyId(id);
    const row = this.statements.get<[string], KeyRow>(`SELECT ${keyColumnList} FROM api_keys WHERE id = ?`).get(id);
    return row === undefined ? null : keyFromRow(row);
  }

  async findByPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    validateKeyId(prefix, 'prefix');
    const rows = this.statements
      .get<[string, string], KeyRow>(
        `SELECT ${keyColumnList} FROM api_keys WHERE prefix = ? UNION SELECT ${keyColumnList} FROM api_keys WHERE previous_prefix = ? ORDER BY created_at, id`,
      )
      .all(prefix, prefix);
    return rows.map(keyFromRow);
  }

  async list(options: KeyListOptions): Promise<ApiKeyRecord[]> {
    validateKeyListOptions(options);
    if (options.limit === 0) return [];
    const revoked = options.includeRevoked === true ? '' : 'AND revoked_at IS NULL';
    if (options.after === undefined) {
      const sql = `SELECT ${keyColumnList} FROM api_keys WHERE 1 = 1 ${revoked} ORDER BY created_at, id LIMIT ?`;
      return this.statements.get<[number], KeyRow>(sql).all(options.limit).map(keyFromRow);
    }
    // An unknown `after` id gives an empty page (its creation time is NULL).
    const sql =
      `SELECT ${keyColumnList} FROM api_keys WHERE (created_at, id) > ((SELECT created_at FROM api_keys WHERE id = ?), ?) ${revoked} ` +
      'ORDER BY created_at, id LIMIT ?';
    return this.statements.get<[string, string, number], KeyRow>(sql).all(options.after, options.after, options.limit).map(keyFromRow);
  }

  async update(record: ApiKeyRecord): Promise<ApiKeyRecord | null> {
    validateKeyRecord(record);
    const [id, ...rest] = keyValues(record);
    let changes: number;
    try {
      changes = this.statements.get<unknown[]>(updateSql).run(...rest, id).changes;
    } catch (error) {
      if (isUniqueViolation(error)) throw new KeyConflictError(conflictMessage(record, error.message));
      throw error;
    }
    return changes === 0 ? null : this.get(record.id);
  }

  async lastChange(): Promise<number> {
    const row = this.statements.get<[], { last: number | null }>('SELECT MAX(updated_at) AS last FROM api_keys').get();
    return row?.last ?? 0;
  }
}
