import type Database from 'better-sqlite3';
import type { SqliteDatabase } from './connection.js';

/**
 * Prepares each SQL text once, on first use (the tables may not exist before `migrate()`),
 * and hands back the same statement afterwards.
 */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly database: SqliteDatabase) {}

  get<Parameters extends unknown[], Row = unknown>(sql: string): Database.Statement<Parameters, Row> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.database.prepare<unknown[], unknown>(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<Parameters, Row>;
  }

  clear(): void {
    this.statements.clear();
  }
}
