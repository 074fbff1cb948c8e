/**
 * Where Chatgate keeps its data (database, generated master key, downloaded models):
 * `--data-dir`, else `CHATGATE_DATA_DIR`, else the config's `data_dir`, else `./.chatgate`,
 * resolved against the working directory. Shared by `serve`, `pull` and `models`.
 */
import { resolve } from 'node:path';

export interface DataDirectoryOptions {
  /** The `--data-dir` option. */
  option?: string | undefined;
  /** The config file's `data_dir`. */
  configured?: string | undefined;
  environment: NodeJS.ProcessEnv;
  workingDirectory: string;
}

export function resolveDataDirectory(options: DataDirectoryOptions): string {
  return resolve(options.workingDirectory, options.option ?? options.environment.CHATGATE_DATA_DIR ?? options.configured ?? '.chatgate');
}
