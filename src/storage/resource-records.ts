/**
 * Long-lived API objects (batches, fine-tuning jobs) and their event logs: the types of the
 * resource store and the helpers both back ends share. An object's state is JSON (`data`) with
 * its `status` beside it for filtering; `version` goes up by one with each update, and an
 * update names the version it read (compare-and-set), so concurrent writers never lose each
 * other's changes: the loser re-reads and retries (`mutateResource`).
 */
import { assertLimit } from './validate.js';

export interface ResourceRecord<Data = Record<string, unknown>> {
  /** `batch`, `fine_tuning.job`, … */
  kind: string;
  id: string;
  /** The project of the key that created it; only that project sees it. */
  project: string;
  status: string;
  data: Data;
  version: number;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
  updatedAt: number;
}

export interface ResourceListOptions {
  kind: string;
  project: string;
  limit: number;
  /** Objects after this id in listing order (newest first); an unknown id gives an empty page. */
  after?: string;
}

export interface ResourceEvent<Data = Record<string, unknown>> {
  /** Unique within the object's stream: adding an event with an id already there is a no-op. */
  id: string;
  data: Data;
  createdAt: number;
}

export interface ResourceEventListOptions {
  limit: number;
  /** Events older than the event with this id (newest first paging). */
  after?: string;
  /** Oldest first instead of newest first. */
  order?: 'asc' | 'desc';
}

export interface ResourceStore {
  /** Inserts the object at version 1; rejects (ResourceConflictError) when the id exists. */
  create(record: Omit<ResourceRecord, 'version'>): Promise<ResourceRecord>;
  /** The object; with `project`, only when it belongs to that project. */
  get(kind: string, id: string, project?: string): Promise<ResourceRecord | null>;
  /** A project's objects of a kind, newest first. */
  list(options: ResourceListOptions): Promise<ResourceRecord[]>;
  /** Objects of a kind in these states (all projects), oldest first: for workers and sweeps. */
  listByStatus(kind: string, statuses: readonly string[], limit: number): Promise<ResourceRecord[]>;
  /**
   * Replaces status and data when the stored version is `expectedVersion`; returns the new
   * record (version + 1), or null when the object changed meanwhile (or is gone).
   */
  update(kind: string, id: string, expectedVersion: number, change: { status: string; data: Record<string, unknown> }): Promise<ResourceRecord | null>;
  delete(kind: string, id: string): Promise<boolean>;
  /** Appends an event to one of the object's streams (`events`, `checkpoints`, …); false when its id is there already. */
  addEvent(kind: string, resourceId: string, stream: string, event: ResourceEvent): Promise<boolean>;
  listEvents(kind: string, resourceId: string, stream: string, options: ResourceEventListOptions): Promise<ResourceEvent[]>;
}

export class ResourceConflictError extends Error {
  constructor(kind: string, id: string) {
    super(`A ${kind} with id ${JSON.stringify(id)} exists`);
    this.name = 'ResourceConflictError';
  }
}

export const resourceColumnList = 'kind, id, project, status, data, version, created_at, updated_at';

export interface ResourceRow {
  kind: string;
  id: string;
  project: string;
  status: string;
  data: unknown;
  version: number;
  created_at: number;
  updated_at: number;
}

export function resourceFromRow(row: ResourceRow, parseJson: boolean): ResourceRecord {
  return {
    kind: row.kind,
    id: row.id,
    project: row.project,
    status: row.status,
    data: (parseJson ? JSON.parse(row.data as string) : row.data) as Record<string, unknown>,
    version: Number(row.version),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export interface EventRow {
  id: string;
  data: unknown;
  created_at: number;
}

export function eventFromRow(row: EventRow, parseJson: boolean): ResourceEvent {
  return { id: row.id, data: (parseJson ? JSON.parse(row.data as string) : row.data) as Record<string, unknown>, createdAt: Number(row.created_at) };
}

function assertText(value: unknown, name: string): void {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`);
}

export function validateResource(record: Omit<ResourceRecord, 'version'>): void {
  if (typeof record !== 'object' || record === null) throw new TypeError('The resource record must be an object');
  for (const field of ['kind', 'id', 'project', 'status'] as const) assertText(record[field], `resource ${field}`);
  if (typeof record.data !== 'object' || record.data === null) throw new TypeError('resource data must be an object');
  for (const field of ['createdAt', 'updatedAt'] as const) {
    if (!Number.isSafeInteger(record[field]) || record[field] < 0) throw new TypeError(`resource ${field} must be a non-negative integer`);
  }
}

export function validateResourceList(options: ResourceListOptions): void {
  assertText(options.kind, 'kind');
  assertText(options.project, 'project');
  assertLimit(options.limit);
}

export function validateEvent(event: ResourceEvent): void {
  assertText(event.id, 'event id');
  if (typeof event.data !== 'object' || event.data === null) throw new TypeError('event data must be an object');
  if (!Number.isSafeInteger(event.createdAt)) throw new TypeError('event createdAt must be an integer');
}

/**
 * Reads the object, applies `change` to it and writes the result, retrying on a concurrent
 * update. `change` returns the new status and data, or null to leave the object as it is.
 * Returns the stored record (null when the object does not exist).
 */
export async function mutateResource(
  store: ResourceStore,
  kind: string,
  id: string,
  change: (record: ResourceRecord) => { status: string; data: Record<string, unknown> } | null,
): Promise<ResourceRecord | null> {
  for (let attempt = 0; ; attempt++) {
    const current = await store.get(kind, id);
    if (current === null) return null;
    const next = change(current);
    if (next === null) return current;
    const updated = await store.update(kind, id, current.version, next);
    if (updated !== null) return updated;
    if (attempt > 100) throw new Error(`Could not update ${kind} ${id}: it keeps changing`);
  }
}
