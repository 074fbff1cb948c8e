import type pg from 'pg';
import { FileConflictError, type FileListOptions, type FileRecord, type FileStore } from '../spec.js';
import { fileColumnList, fileFromRow, fileValues, validateFileListOptions, validateFileRecord, type FileRow } from '../file-records.js';
import { isUniqueViolation } from './connection.js';

/** Uploaded files' metadata in Postgres (ids are `COLLATE "C"`: bytewise order, like SQLite). */
export class PostgresFileStore implements FileStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(record: FileRecord): Promise<void> {
    validateFileRecord(record);
    try {
      await this.pool.query(`INSERT INTO files (${fileColumnList}) VALUES ($1, $2, $3, $4, $5, $6)`, fileValues(record));
    } catch (error) {
      if (isUniqueViolation(error)) throw new FileConflictError(record.id);
      throw error;
    }
  }

  async get(project: string, id: string): Promise<FileRecord | null> {
    const result = await this.pool.query<FileRow>(`SELECT ${fileColumnList} FROM files WHERE id = $1 AND project = $2`, [id, project]);
    const row = result.rows[0];
    return row === undefined ? null : fileFromRow(row);
  }

  async list(options: FileListOptions): Promise<FileRecord[]> {
    validateFileListOptions(options);
    if (options.limit === 0) return [];
    const descending = (options.order ?? 'desc') === 'desc';
    const direction = descending ? 'DESC' : 'ASC';
    const values: unknown[] = [options.project];
    const conditions = ['project = $1'];
    if (options.purpose !== undefined) {
      values.push(options.purpose);
      conditions.push(`purpose = $${values.length}`);
    }
    if (options.after !== undefined) {
      values.push(options.after);
      const after = `$${values.length}`;
      // An unknown `after` (or another project's) gives an empty page: the comparison with NULL is never true.
      conditions.push(`(created_at, id) ${descending ? '<' : '>'} ((SELECT created_at FROM files WHERE id = ${after} AND project = $1), ${after})`);
    }
    values.push(options.limit);
    const result = await this.pool.query<FileRow>(
      `SELECT ${fileColumnList} FROM files WHERE ${conditions.join(' AND ')} ORDER BY created_at ${direction}, id ${direction} LIMIT $${values.length}`,
      values,
    );
    return result.rows.map(fileFromRow);
  }

  async delete(project: string, id: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM files WHERE id = $1 AND project = $2', [id, project]);
    return (result.rowCount ?? 0) > 0;
  }
}
