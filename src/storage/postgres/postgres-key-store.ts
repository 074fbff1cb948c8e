import type pg from 'pg';
import { KeyConflictError, type ApiKeyRecord, type KeyListOptions, type KeyStore } from '../spec.js';
import { conflictMessage, keyColumnList, keyFromRow, keyValues, validateKeyId, validateKeyListOptions, validateKeyRecord, type KeyRow } from '../key-records.js';
import { isUniqueViolation } from './connection.js';

const insertSql = `INSERT INTO api_keys (${keyColumnList}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12)`;
const updateSql =
  'UPDATE api_keys SET name = $2, prefix = $3, secret_hash = $4, previous_prefix = $5, previous_secret_hash = $6, ' +
  'previous_valid_until = $7, settings = $8::jsonb, created_at = $9, updated_at = $10, expires_at = $11, revoked_at = $12 ' +
  `WHERE id = $1 RETURNING ${keyColumnList}`;

/** API keys in Postgres: the indexed columns plus the settings as JSONB. */
export class PostgresKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(record: ApiKeyRecord): Promise<void> {
    validateKeyRecord(record);
    try {
      await this.pool.query(insertSql, keyValues(record));
    } catch (error) {
      if (isUniqueViolation(error)) throw new KeyConflictError(conflictMessage(record, error.constraint ?? error.detail ?? ''));
      throw error;
    }
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    validateKeyId(id);
    const result = await this.pool.query<KeyRow>(`SELECT ${keyColumnList} FROM api_keys WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row === undefined ? null : keyFromRow(row);
  }

  async findByPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    validateKeyId(prefix, 'prefix');
    const result = await this.pool.query<KeyRow>(
      `SELECT ${keyColumnList} FROM api_keys WHERE prefix = $1 OR previous_prefix = $1 ORDER BY created_at, id`,
      [prefix],
    );
    return result.rows.map(keyFromRow);
  }

  async list(options: KeyListOptions): Promise<ApiKeyRecord[]> {
    validateKeyListOptions(options);
    if (options.limit === 0) return [];
    const revoked = options.includeRevoked === true ? '' : 'AND revoked_at IS NULL';
    const result =
      options.after === undefined
        ? await this.pool.query<KeyRow>(`SELECT ${keyColumnList} FROM api_keys WHERE TRUE ${revoked} ORDER BY created_at, id LIMIT $1`, [options.limit])
        : await this.pool.query<KeyRow>(
            // An unknown `after` id gives an empty page (its creation time is NULL).
            `SELECT ${keyColumnList} FROM api_keys WHERE (created_at, id) > ((SELECT created_at FROM api_keys WHERE id = $1), $1) ${revoked} ` +
              'ORDER BY created_at, id LIMIT $2',
            [options.after, options.limit],
          );
    return result.rows.map(keyFromRow);
  }

  async update(record: ApiKeyRecord): Promise<ApiKeyRecord | null> {
    validateKeyRecord(record);
    try {
      const result = await this.pool.query<KeyRow>(updateSql, keyValues(record));
      const row = result.rows[0];
      return row === undefined ? null : keyFromRow(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new KeyConflictError(conflictMessage(record, error.constraint ?? error.detail ?? ''));
      throw error;
    }
  }

  async lastChange(): Promise<number> {
    const result = await this.pool.query<{ last: number | null }>('SELECT MAX(updated_at) AS last FROM api_keys');
    return result.rows[0]?.last ?? 0;
  }
}
