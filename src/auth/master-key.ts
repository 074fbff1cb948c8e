/**
 * The master key: from CHATGATE_MASTER_KEY, else generated once and kept in the data
 * directory (`master.key`, mode 0600). The caller prints a generated key once.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MasterKey {
  key: string;
  /** 'environment', 'file' (read from the data dir) or 'generated' (written just now). */
  origin: 'environment' | 'file' | 'generated';
  path: string | null;
}

export function generateSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function resolveMasterKey(dataDirectory: string, environment: NodeJS.ProcessEnv): MasterKey {
  const fromEnvironment = environment.CHATGATE_MASTER_KEY;
  if (fromEnvironment) return { key: fromEnvironment, origin: 'environment', path: null };

  const path = join(dataDirectory, 'master.key');
  if (existsSync(path)) {
    const key = readFileSync(path, 'utf8').trim();
    if (!key) throw new Error(`The master key file ${path} is empty: delete it to generate a new key.`);
    return { key, origin: 'file', path };
  }
  mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  const key = generateSecret('sk-chatgate-');
  // 'wx' fails if another process created the file meanwhile: never overwrite a key.
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { key, origin: 'generated', path };
}
