/** Batches, fine-tuning jobs and their events in Postgres (see resource-records.ts). */
import type pg from 'pg';
import {
  eventFromRow, resourceColumnList, resourceFromRow, ResourceConflictError, validateEvent, validateResource, validateResourceList,
  type EventRow, type ResourceEvent, type ResourceEventListOptions, type ResourceListOptions, type ResourceRecord, type ResourceRow, type ResourceStore,
} from '../resource-records.js';
import { isUniqueViolation } from './connection.js';

export class PostgresResourceStore implements ResourceStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(record: Omit<ResourceRecord, 'version'>): Promise<ResourceRecord> {
    validateResource(record);
    try {
      await this.pool.query(`INSERT INTO resources (${resourceColumnList}) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)`, [
        record.kind, record.id, record.project, record.status, JSON.stringify(record.data), record.createdAt, record.updatedAt,
      ]);
    } catch (error) {
      if (isUniqueViolation(error)) throw new ResourceConflictError(record.kind, record.id);
      throw error;
    }
    return { ...record, version: 1 };
  }

  async get(kind: string, id: string, project?: string): Promise<ResourceRecord | null> {
    const result =
      project === undefined
        ? await this.pool.query<ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = $1 AND id = $2`, [kind, id])
        : await this.pool.query<ResourceRow>(`SELECT ${resourceColumnList} FROM resources WHERE kind = $1 AND id = $2 AND project = $3`, [kind, id, project]);
    const row = result.rows[0];
    return row === undefined ? null : resourceFromRow(row, false);
  }

  async list(options: ResourceListOptions): Promise<ResourceRecord[]> {
    validateResourceList(options);
    if (options.limit === 0) return [];
    const values: unknown[] = [options.kind, options.project];
    let after = '';
    if (options.after !== undefined) {
      values.push(options.after);
      after = `AND (created_at, id) < ((SELECT created_at FROM resources WHERE kind = $1 AND id = $3 AND project = $2), $3)`;
    }
    values.push(options.limit);
    const result = await this.pool.query<ResourceRow>(
      `SELECT ${resourceColumnList} FROM resources WHERE kind = $1 AND project = $2 ${after} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
      values,
    );
    return result.rows.map((row) => resourceFromRow(row, false));
  }

  async listByStatus(kind: string, statuses: readonly string[], limit: number): Promise<ResourceRecord[]> {
    if (statuses.length === 0 || limit === 0) return [];
    const result = await this.pool.query<ResourceRow>(
      `SELECT ${resourceColumnList} FROM resources WHERE kind = $1 AND status = ANY($2::text[]) ORDER BY created_at, id LIMIT $3`,
      [kind, [...statuses], limit],
    );
    return result.rows.map((row) => resourceFromRow(row, false));
  }

  async update(kind: string, id: string, expectedVersion: number, change: { status: string; data: Record<string, unknown> }): Promise<ResourceRecord | null> {
    const result = await this.pool.query<ResourceRow>(
      `UPDATE resources SET status = $1, data = $2, version = version + 1, updated_at = $3 WHERE kind = $4 AND id = $5 AND version = $6 RETURNING ${resourceColumnList}`,
      [change.status, JSON.stringify(change.data), Date.now(), kind, id, expectedVersion],
    );
    const row = result.rows[0];
    return row === undefined ? null : resourceFromRow(row, false);
  }

  async delete(kind: string, id: string): Promise<boolean> {
    await this.pool.query('DELETE FROM resource_events WHERE kind = $1 AND resource_id = $2', [kind, id]);
    const result = await this.pool.query('DELETE FROM resources WHERE kind = $1 AND id = $2', [kind, id]);
    return (result.rowCount ?? 0) > 0;
  }

  async addEvent(kind: string, resourceId: string, stream: string, event: ResourceEvent): Promise<boolean> {
    validateEvent(event);
    const result = await this.pool.query(
      'INSERT INTO resource_events (kind, resource_id, stream, id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      [kind, resourceId, stream, event.id, JSON.stringify(event.data), event.createdAt],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async listEvents(kind: string, resourceId: string, stream: string, options: ResourceEventListOptions): Promise<ResourceEvent[]> {
    const descending = (options.order ?? 'desc') === 'desc';
    const values: unknown[] = [kind, resourceId, stream];
    let after = '';
    if (options.after !== undefined) {
      values.push(options.after);
      after = `AND seq ${descending ? '<' : '>'} (SELECT seq FROM resource_events WHERE kind = $1 AND resource_id = $2 AND stream = $3 AND id = $4)`;
    }
    values.push(options.limit);
    const result = await this.pool.query<EventRow>(
      `SELECT id, data, created_at FROM resource_events WHERE kind = $1 AND resource_id = $2 AND stream = $3 ${after} ORDER BY seq ${descending ? 'DESC' : 'ASC'} LIMIT $${values.length}`,
      values,
    );
    return result.rows.map((row) => eventFromRow(row, false));
  }
}
