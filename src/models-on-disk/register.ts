/**
 * Adds a `{ name, provider: llama-cpp, path }` model to the config file, editing the YAML
 * document in place (comments and formatting kept), validating the result with the config
 * schema and writing it atomically (temp file + rename). Creates the file when missing.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Document, isMap, isSeq, parseDocument, type YAMLMap } from 'yaml';
import { ConfigError, validateConfig } from '../config/load-config.js';
import { PullError, describeError } from './errors.js';

export interface RegisterOptions {
  configPath: string;
  name: string;
  /** Absolute path of the model file. */
  modelPath: string;
  force?: boolean;
  environment?: NodeJS.ProcessEnv;
  /** Relative `path`s in the config resolve against it (as the server does). */
  workingDirectory?: string;
}

export type RegisterOutcome = 'created' | 'added' | 'unchanged' | 'updated' | 'replaced';

/** Whether a ConfigError is only about `${NAME}` placeholders of unset variables. */
export function isUnsetVariableError(error: unknown): boolean {
  return error instanceof ConfigError && /environment variable \S+ is not set/.test(error.message);
}

/** The environment with a stand-in for unset variables (those may be set only when serving). */
export function lenientEnvironment(environment: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return new Proxy(environment, {
    get: (target, key) => (typeof key === 'string' && !target[key] ? 'x' : target[key as string]),
  });
}

/** Validates; placeholders of unset environment variables do not count. */
function validate(raw: unknown, source: string, environment: NodeJS.ProcessEnv): void {
  try {
    validateConfig(raw, source, environment);
  } catch (error) {
    if (!isUnsetVariableError(error)) throw error;
    validateConfig(raw, source, lenientEnvironment(environment));
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  let mode: number | undefined;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    mode = undefined;
  }
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text, mode === undefined ? {} : { mode });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new PullError(`cannot write ${path}: ${describeError(error)}`);
  }
}

export async function registerModel(options: RegisterOptions): Promise<RegisterOutcome> {
  const environment = options.environment ?? process.env;
  const workingDirectory = options.workingDirectory ?? process.cwd();
  const configPath = resolve(workingDirectory, options.configPath);
  const entry = { name: options.name, provider: 'llama-cpp', path: options.modelPath };

  let text: string | null;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new PullError(`cannot read ${configPath}: ${describeError(error)}`);
    text = null;
  }

  let document: Document;
  let outcome: RegisterOutcome;
  if (text === null || text.trim() === '') {
    document = new Document({ models: [entry] });
    outcome = 'created';
  } else {
    document = parseDocument(text);
    if (document.errors.length > 0) {
      throw new PullError(`cannot register the model: ${configPath} is not valid YAML: ${document.errors[0]!.message.split('\n')[0]}`);
    }
    if (document.contents === null) document.contents = document.createNode({}) as unknown as typeof document.contents;
    if (!isMap(document.contents)) throw new PullError(`cannot register the model: ${configPath} is not a mapping of keys such as 'models'`);
    let models = document.get('models', true);
    if (models === undefined || models === null || (typeof models === 'object' && 'value' in models && models.value === null)) {
      document.set('models', document.createNode([]));
      models = document.get('models', true);
    }
    if (!isSeq(models)) throw new PullError(`cannot register the model: 'models' in ${configPath} is not a list`);
    const index = models.items.findIndex((item) => isMap(item) && item.get('name') === options.name);
    if (index < 0) {
      models.items.push(document.createNode(entry));
      outcome = 'added';
    } else {
      const existing = models.items[index] as YAMLMap;
      const provider = existing.get('provider');
      const path = existing.get('path');
      const samePath = typeof path === 'string' && resolve(workingDirectory, path) === resolve(options.modelPath);
      if (provider === 'llama-cpp' && samePath) return 'unchanged';
      if (!options.force) {
        const target = provider === 'llama-cpp' ? `the file ${String(path)}` : `provider ${String(provider)}`;
        throw new PullError(
          `a model named '${options.name}' already exists in ${configPath} (${target}): choose another name with --name, or replace it with --force`,
        );
      }
      if (provider === 'llama-cpp') {
        existing.set('path', options.modelPath);
        outcome = 'updated';
      } else {
        models.items[index] = document.createNode(entry);
        outcome = 'replaced';
      }
    }
  }

  try {
    validate(document.toJS(), configPath, environment);
  } catch (error) {
    if (error instanceof ConfigError) throw new PullError(`cannot register the model, the config would be invalid: ${error.message}`, 1);
    throw error;
  }
  await writeAtomically(configPath, String(document));
  return outcome;
}
