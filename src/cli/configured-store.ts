/**
 * Opens and migrates the store a `chatgate serve` with the same options would use (the
 * config's database_url, else the SQLite file in the data directory), for the commands
 * that work on the database directly (`keys`, `audit`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDataDirectory } from '../config/data-directory.js';
import { loadConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { openStore } from '../storage/open-store.js';
import { restrictNewFiles } from '../storage/private-files.js';
import type { Store } from '../storage/spec.js';

export interface ConfiguredStoreOptions {
  configPath: string | undefined;
  dataDirectory: string | undefined;
  environment: NodeJS.ProcessEnv;
  workingDirectory: string;
}

export async function openConfiguredStore(options: ConfiguredStoreOptions): Promise<{ store: Store; config: Config }> {
  const { config } = loadConfig({ path: options.configPath, workingDirectory: options.workingDirectory, environment: options.environment });
  const dataDirectory = resolveDataDirectory({ option: options.dataDirectory, configured: config.data_dir, environment: options.environment, workingDirectory: options.workingDirectory });
  restrictNewFiles();
  if (!config.database_url) mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  const store = await openStore({ databaseUrl: config.database_url, sqlitePath: join(dataDirectory, 'chatgate.db') });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return { store, config };
}
