/**
 * Chatgate's data files hold secrets and personal data (the database with key digests and
 * the audit log, master.key, uploaded files, spilled audit records, fine-tuning output, the
 * cache): only the user running Chatgate may read them. New files get it from the process
 * umask (`restrictNewFiles`, 0o077: files 0600, folders 0700, whatever creates them: SQLite's
 * -wal/-shm, a trainer, a library); files from before (an older version, another tool,
 * an operator's copy) are corrected at start (`makePrivate`).
 */
import { chmodSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIRECTORY_MODE = 0o700;
const PRIVATE_UMASK = 0o077;

/**
 * Every file and folder this process creates from now on is private to its user. Process-wide
 * (a server process owns its umask); a no-op in a worker thread, where Node forbids it.
 */
export function restrictNewFiles(): void {
  if (isMainThread) process.umask(process.umask() | PRIVATE_UMASK);
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** A path whose mode could not be changed (not its owner, a read-only file system, …). */
export interface PrivateFileFailure {
  path: string;
  error: Error;
}

/**
 * Folders 0700 and files 0600 under each path (included), recursively; symbolic links are
 * neither followed nor changed, missing paths skipped. A path inside another one (or inside one
 * of `done`) is walked once. What cannot be changed is skipped and returned, never thrown: a
 * start does not fail on a file another user owns in a shared folder.
 */
export function makePrivate(paths: readonly string[], options: { done?: readonly string[] } = {}): PrivateFileFailure[] {
  // `done`: paths made private already (by an earlier call); nothing within them is walked again.
  const walked = (options.done ?? []).map((path) => resolve(path));
  const failures: PrivateFileFailure[] = [];
  for (const root of paths.map((path) => resolve(path)).sort((a, b) => a.length - b.length)) {
    if (walked.some((parent) => contains(parent, root))) continue;
    walked.push(root);
    makePrivateTree(root, failures);
  }
  return failures;
}

function contains(parent: string, child: string): boolean {
  const path = relative(parent, child);
  return path === '' || (!path.startsWith('..') && !isAbsolute(path));
}

function makePrivateTree(root: string, failures: PrivateFileFailure[]): void {
  const pending = [root];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const stats = statOrNull(path);
    if (stats === null || stats.isSymbolicLink() || !(stats.isDirectory() || stats.isFile())) continue;
    try {
      const mode = stats.isDirectory() ? PRIVATE_DIRECTORY_MODE : PRIVATE_FILE_MODE;
      if ((stats.mode & 0o777) !== mode) chmodSync(path, mode);
      if (stats.isDirectory()) for (const name of readdirSync(path)) pending.push(join(path, name));
    } catch (error) {
      failures.push({ path, error: error as Error });
    }
  }
}
