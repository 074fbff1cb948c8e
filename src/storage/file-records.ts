/**
 * The dialect-neutral half of the file stores: input checks and row mapping.
 */
import { assertLimit } from './audit-records.js';
import type { FileListOptions, FileRecord } from './spec.js';

export const fileColumnList = 'id, project, purpose, filename, bytes, created_at';

export interface FileRow {
  id: string;
  project: string;
  purpose: string;
  filename: string;
  bytes: number;
  created_at: number;
}

export function fileFromRow(row: FileRow): FileRecord {
  return { id: row.id, project: row.project, purpose: row.purpose, filename: row.filename, bytes: Number(row.bytes), createdAt: Number(row.created_at) };
}

export function fileValues(record: FileRecord): [string, string, string, string, number, number] {
  return [record.id, record.project, record.purpose, record.filename, record.bytes, record.createdAt];
}

export function validateFileRecord(record: FileRecord): void {
  if (typeof record !== 'object' || record === null) throw new TypeError('The file record must be an object');
  for (const field of ['id', 'project', 'purpose'] as const) {
    if (typeof record[field] !== 'string' || record[field] === '') throw new TypeError(`file record: ${field} must be a non-empty string`);
  }
  if (typeof record.filename !== 'string') throw new TypeError('file record: filename must be a string');
  for (const field of ['bytes', 'createdAt'] as const) {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`file record: ${field} must be a non-negative integer`);
  }
}

export function validateFileListOptions(options: FileListOptions): void {
  if (typeof options.project !== 'string' || options.project === '') throw new TypeError('project must be a non-empty string');
  assertLimit(options.limit);
  if (options.order !== undefined && options.order !== 'asc' && options.order !== 'desc') throw new TypeError(`order must be asc or desc, got ${String(options.order)}`);
}
