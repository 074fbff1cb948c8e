import { FileConflictError, type FileListOptions, type FileRecord, type FileStore } from '../spec.js';
import { fileColumnList, fileFromRow, fileValues, validateFileListOptions, validateFileRecord, type FileRow } from '../file-records.js';
import type { StatementCache } from './statement-cache.js';

function isPrimaryKeyViolation(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** Uploaded files' metadata in SQLite (ids compare bytewise: SQLite's default BINARY collation). */
export class SqliteFileStore implements FileStore {
  constructor(private readonly statements: StatementCache) {}

  async create(record: FileRecord): Promise<void> {
    validateFileRecord(record);
    try {
      this.statements.get<unknown[]>(`INSERT INTO files (${fileColumnList}) VALUES (?, ?, ?, ?, ?, ?)`).run(...fileValues(record));
    } catch (error) {
      if (isPrimaryKeyViolation(error)) throw new FileConflictError(record.id);
      throw error;
    }
  }

  async get(project: string, id: string): Promise<FileRecord | null> {
    const row = this.statements.get<[string, string], FileRow>(`SELECT ${fileColumnList} FROM files WHERE id = ? AND project = ?`).get(id, project);
    return row === undefined ? null : fileFromRow(row);
  }

  async list(options: FileListOptions): Promise<FileRecord[]> {
    validateFileListOptions(options);
    if (options.limit === 0) return [];
    const descending = (options.order ?? 'desc') === 'desc';
    const direction = descending ? 'DESC' : 'ASC';
    const conditions = ['project = ?'];
    const values: unknown[] = [options.project];
    if (options.purpose !== undefined) {
      conditions.push('purpose = ?');
      values.push(options.purpose);
    }
    if (options.after !== undefined) {
      // An unknown `after` (or another project's) gives an empty page: the comparison with NULL is never true.
      conditions.push(`(created_at, id) ${descending ? '<' : '>'} ((SELECT created_at FROM files WHERE id = ? AND project = ?), ?)`);
      values.push(options.after, options.project, options.after);
    }
    values.push(options.limit);
    const sql = `SELECT ${fileColumnList} FROM files WHERE ${conditions.join(' AND ')} ORDER BY created_at ${direction}, id ${direction} LIMIT ?`;
    return this.statements.get<unknown[], FileRow>(sql).all(...values).map(fileFromRow);
  }

  async delete(project: string, id: string): Promise<boolean> {
    return this.statements.get<[string, string]>('DELETE FROM files WHERE id = ? AND project = ?').run(id, project).changes > 0;
  }
}
