/**
 * Finds, reads and validates the configuration: `--config FILE`, else `chatgate.yaml` in
 * the working directory, else the built-in defaults. `${NAME}` and `${NAME:-fallback}`
 * placeholders in string values are replaced from the environment. Any problem is a
 * ConfigError whose message names the file and the bad key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { defaultConfig } from './defaults.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file read, or null for the built-in defaults. */
  path: string | null;
}

export interface LoadConfigOptions {
  path?: string | undefined;
  workingDirectory?: string;
  environment?: NodeJS.ProcessEnv;
}

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_PLACEHOLDER = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Formats a key path the way a user reads it in YAML: `models[0].base_url`. */
export function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text ? `.${String(segment)}` : String(segment);
  }
  return text || '(root)';
}

function substitute(value: unknown, path: PropertyKey[], environment: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_PLACEHOLDER.test(value);
    const replaced = value.replace(PLACEHOLDER, (_match, name: string, fallback: string | undefined) => {
      const found = environment[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(
        `${formatKeyPath(path)}: environment variable ${name} is not set (write \${${name}:-} to allow an empty value)`,
      );
    });
    // A value that is only a placeholder may stand for a number or a boolean.
    if (whole) {
      if (/^-?\d+(\.\d+)?$/.test(replaced)) return Number(replaced);
      if (replaced === 'true' || replaced === 'false') return replaced === 'true';
    }
    return replaced;
  }
  if (Array.isArray(value)) return value.map((item, index) => substitute(item, [...path, index], environment));
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = substitute(item, [...path, key], environment);
    return result;
  }
  return value;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const key = formatKeyPath(issue.path);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((name) => `${formatKeyPath([...issue.path, name])}: unknown key`).join('\n  ');
      }
      return `${key}: ${issue.message}`;
    })
    .join('\n  ');
}

export function validateConfig(raw: unknown, source: string, environment: NodeJS.ProcessEnv = process.env): Config {
  let substituted: unknown;
  try {
    substituted = substitute(raw ?? {}, [], environment);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`Invalid configuration in ${source}:\n  ${error.message}`);
    throw error;
  }
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(`Invalid configuration in ${source}:\n  ${describeIssues(result.error)}`);
  return result.data;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const environment = options.environment ?? process.env;
  const workingDirectory = options.workingDirectory ?? process.cwd();
  let path: string | null = null;
  if (options.path) {
    path = resolve(workingDirectory, options.path);
    if (!existsSync(path)) throw new ConfigError(`Config file not found: ${path}`);
  } else {
    const candidate = resolve(workingDirectory, 'chatgate.yaml');
    if (existsSync(candidate)) path = candidate;
  }
  if (path === null) return { config: validateConfig(defaultConfig(environment), 'the built-in defaults', environment), path };

  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`Cannot read config file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(`Invalid configuration in ${path}:\n  (root): expected a mapping of keys such as 'models'`);
  }
  return { config: validateConfig(raw, path, environment), path };
}
