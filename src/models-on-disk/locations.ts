/**
 * Where `pull` and `models` look: the config file (`--config`, default ./chatgate.yaml) and
 * the models folder (`--models-dir`, else `<data dir>/models`, the data dir resolved as
 * `serve` does it).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveDataDirectory } from '../config/data-directory.js';
import { loadConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { isUnsetVariableError, lenientEnvironment } from './register.js';

export interface LocationOptions {
  config?: string | undefined;
  modelsDir?: string | undefined;
  dataDir?: string | undefined;
  environment: NodeJS.ProcessEnv;
  workingDirectory: string;
}

export interface Locations {
  /** Absolute path of the config file (which may not exist yet). */
  configPath: string;
  configExists: boolean;
  modelsDirectory: string;
}

export const DEFAULT_CONFIG_FILE = 'chatgate.yaml';

/** Loads the config file when it exists (ConfigError when it is invalid). */
export function loadExistingConfig(locations: Pick<Locations, 'configPath' | 'configExists'>, environment: NodeJS.ProcessEnv): Config | null {
  if (!locations.configExists) return null;
  try {
    return loadConfig({ path: locations.configPath, environment }).config;
  } catch (error) {
    // Variables such as API keys may be set only where the server runs.
    if (!isUnsetVariableError(error)) throw error;
    return loadConfig({ path: locations.configPath, environment: lenientEnvironment(environment) }).config;
  }
}

export function resolveLocations(options: LocationOptions): Locations {
  const configPath = resolve(options.workingDirectory, options.config ?? DEFAULT_CONFIG_FILE);
  const configExists = existsSync(configPath);
  let modelsDirectory: string;
  if (options.modelsDir) modelsDirectory = resolve(options.workingDirectory, options.modelsDir);
  else {
    // The config's data_dir matters only when neither --data-dir nor CHATGATE_DATA_DIR is given.
    const needsConfig = options.dataDir === undefined && options.environment.CHATGATE_DATA_DIR === undefined;
    const config = needsConfig ? loadExistingConfig({ configPath, configExists }, options.environment) : null;
    const dataDirectory = resolveDataDirectory({
      option: options.dataDir,
      configured: config?.data_dir,
      environment: options.environment,
      workingDirectory: options.workingDirectory,
    });
    modelsDirectory = join(dataDirectory, 'models');
  }
  return { configPath, configExists, modelsDirectory };
}
