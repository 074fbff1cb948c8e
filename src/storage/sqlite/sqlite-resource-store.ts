/** Batches, fine-tuning jobs and their events in SQLite (see resource-records.ts). */
import {
  eventFromRow, resourceColumnList, resourceFromRow, ResourceConflictError, validateEvent, validateResource, validateResourceList,
  type EventRow, type ResourceEvent, type ResourceEventListOptions, type ResourceListOptions, type ResourceRecord, type ResourceRow, type ResourceStore,
} from '../resource-records.js';
import type { StatementCache } from './statement-cache.js';

function isConstraintViolation(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqliteResourceStore implements ResourceStore {
  constructor(private readonly statements: StatementCache) {}

  async create(record: Omit<ResourceRecord, 'version'>): Promise<ResourceRecord> {
    validateResource(record);
    try {
      this.statements
        .get<unknown[]>(`INSERT INTO resources (${resourceColumnList}) VALUES (?, ?, ?, ?, ?, 1, ?, ?)`)
        .run(record.kind, record.id, record.project, record.status, JSON.stringify(record.data), record.createdAt, record.updatedAt);
    } catch (error) {
      if (isConstraintViolation(error)) throw new ResourceConflictError(record.kind, record.id);
      throw error;
    }
    return { ...record, version: 1 };
  }

  async get(kind: string, id: string, project?: string): Promise<ResourceRecord | null> {
    const row =
      project === undefined
        ? this.statements.get<[string, string], ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = ? AND id = ?`).get(kind, id)
        : this.statements.get<[string, string, string], ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = ? AND id = ? AND project = ?`).get(kind, id, project);
    return row === undefined ? null : resourceFromRow(row, true);
  }

  async list(options: ResourceListOptions): Promise<ResourceRecord[]> {
    validateResourceList(options);
    if (options.limit === 0) return [];
    const values: unknown[] = [options.kind, options.project];
    let after = '';
    if (options.after !== undefined) {
      // An unknown `after` gives an empty page: the comparison with NULL is never true.
      after = 'AND (created_at, id) < ((SELECT created_at FROM resources WHERE kind = ? AND id = ? AND project = ?), ?)';
      values.push(options.kind, options.after, options.project, options.after);
    }
    values.push(options.limit);
    return this.statements
      .get<unknown[], ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = ? AND project = ? ${after} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...values)
      .map((row) => resourceFromRow(row, true));
  }

  async listByStatus(kind: string, statuses: readonly string[], limit: number): Promise<ResourceRecord[]> {
    if (statuses.length === 0 || limit === 0) return [];
    const marks = statuses.map(() => '?').join(', ');
    return this.statements
      .get<unknown[], ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = ? AND status IN (${marks}) ORDER BY created_at, id LIMIT ?`)
      .all(kind, ...statuses, limit)
      .map((row) => resourceFromRow(row, true));
  }

  async update(kind: string, id: string, expectedVersion: number, change: { status: string; data: Record<string, unknown> }): Promise<ResourceRecord | null> {
    const row = this.statements
      .get<unknown[], ResourceRow>(
        `UPDATE resources SET status = ?, data = ?, version = version + 1, updated_at = ? WHERE kind = ? AND id = ? AND version = ? RETURNING ${resourceColumnList}`,
      )
      .get(change.status, JSON.stringify(change.data), Date.now(), kind, id, expectedVersion);
    return row === undefined ? null : resourceFromRow(row, true);
  }

  async delete(kind: string, id: string): Promise<boolean> {
    this.statements.get<[string, string]>('DELETE FROM resource_events WHERE kind = ? AND resource_id = ?').run(kind, id);
    return this.statements.get<[string, string]>('DELETE FROM resources WHERE kind = ? AND id = ?').run(kind, id).changes > 0;
  }

  async addEvent(kind: string, resourceId: string, stream: string, event: ResourceEvent): Promise<boolean> {
    validateEvent(event);
    const result = this.statements
      .get<unknown[]>('INSERT INTO resource_events (kind, resource_id, stream, id, data, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(kind, resourceId, stream, event.id, JSON.stringify(event.data), event.createdAt);
    return result.changes > 0;
  }

  async listEvents(kind: string, resourceId: string, stream: string, options: ResourceEventListOptions): Promise<ResourceEvent[]> {
    const descending = (options.order ?? 'desc') === 'desc';
    const values: unknown[] = [kind, resourceId, stream];
    let after = '';
    if (options.after !== undefined) {
      after = `AND seq ${descending ? '<' : '>'} (SELECT seq FROM resource_events WHERE kind = ? AND resource_id = ? AND stream = ? AND id = ?)`;
      values.push(kind, resourceId, stream, options.after);
    }
    values.push(options.limit);
    return this.statements
      .get<unknown[], EventRow>(
        `SELECT id, data, created_at FROM resource_events WHERE kind = ? AND resource_id = ? AND stream = ? ${after} ORDER BY seq ${descending ? 'DESC' : 'ASC'} LIMIT ?`,
      )
      .all(...values)
      .map((row) => eventFromRow(row, true));
  }
}
