/**
 * Files Chatgate writes itself (a batch's output and errors, a fine-tuning job's results):
 * their ids derive from what produced them, so a worker that crashed while writing one writes
 * the same file again rather than leaving an orphan; `recordDerivedFile` replaces the record
 * such an earlier attempt may have left.
 */
import { createHash } from 'node:crypto';
import { FileConflictError, type FileRecord, type FileStore } from '../storage/spec.js';

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `file-` + 24 letters and digits derived from the producer's id and the file's role. */
export function derivedFileId(ownerId: string, role: string): string {
  const digest = createHash('sha256').update(`${ownerId}:${role}`).digest();
  let id = 'file-';
  for (let index = 0; index < 24; index++) id += ALPHANUMERIC[digest[index]! % ALPHANUMERIC.length];
  return id;
}

/** Stores the file's record (its bytes are in the blob store already), replacing an earlier attempt's. */
export async function recordDerivedFile(files: FileStore, record: FileRecord): Promise<void> {
  try {
    await files.create(record);
  } catch (error) {
    if (!(error instanceof FileConflictError)) throw error;
    await files.delete(record.project, record.id);
    await files.create(record);
  }
}
