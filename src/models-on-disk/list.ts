/**
 * What is in the models folder: the .gguf files (with their GGUF metadata and the configured
 * models that use each), leftover .part files of interrupted downloads, and the configured
 * llama-cpp models whose file is missing.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readPartInfo } from './download.js';
import { describeError } from './errors.js';
import { readGgufSummary, type GgufSummary } from './gguf.js';

export interface ConfiguredModel {
  name: string;
  path: string;
}

export interface ListedFile {
  file: string;
  path: string;
  size: number;
  gguf: GgufSummary | null;
  /** Why the metadata could not be read. */
  error: string | null;
  /** Names of the configured models that serve this file. */
  used_by: string[];
}

export interface ListedPart {
  file: string;
  path: string;
  size: number;
  /** Size of the complete file, when known. */
  total: number | null;
  url: string | null;
}

export interface Listing {
  models_dir: string;
  models_dir_exists: boolean;
  config: string | null;
  files: ListedFile[];
  incomplete: ListedPart[];
  /** Configured llama-cpp models whose file does not exist. */
  missing: ConfiguredModel[];
  /** Configured llama-cpp models whose file exists outside the models folder. */
  elsewhere: ConfiguredModel[];
}

export interface ListOptions {
  modelsDirectory: string;
  configPath: string | null;
  configured: ConfiguredModel[];
  workingDirectory: string;
  readSummary?: (path: string) => Promise<GgufSummary>;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function listModels(options: ListOptions): Promise<Listing> {
  const readSummary = options.readSummary ?? readGgufSummary;
  const directory = options.modelsDirectory;
  let names: string[] = [];
  let directoryExists = true;
  try {
    names = (await readdir(directory, { withFileTypes: true })).filter((entry) => entry.isFile() || entry.isSymbolicLink()).map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    directoryExists = false;
  }
  names.sort((a, b) => a.localeCompare(b));
  const configured = options.configured.map((model) => ({ ...model, absolute: resolve(options.workingDirectory, model.path) }));

  const files: ListedFile[] = [];
  const incomplete: ListedPart[] = [];
  for (const file of names) {
    const path = join(directory, file);
    if (/\.gguf$/i.test(file)) {
      let size = 0;
      try {
        size = (await stat(path)).size;
      } catch {
        continue;
      }
      let gguf: GgufSummary | null = null;
      let error: string | null = null;
      try {
        gguf = await readSummary(path);
      } catch (caught) {
        error = describeError(caught).split('\n')[0]!;
      }
      const usedBy = configured.filter((model) => model.absolute === path).map((model) => model.name);
      files.push({ file, path, size, gguf, error, used_by: usedBy });
    } else if (/\.gguf\.part$/i.test(file)) {
      const size = (await stat(path).catch(() => null))?.size ?? 0;
      const info = await readPartInfo(path);
      incomplete.push({ file, path, size, total: info?.total ?? null, url: info?.url ?? null });
    }
  }

  const missing: ConfiguredModel[] = [];
  const elsewhere: ConfiguredModel[] = [];
  for (const model of configured) {
    if (files.some((file) => file.path === model.absolute)) continue;
    if (await exists(model.absolute)) elsewhere.push({ name: model.name, path: model.absolute });
    else missing.push({ name: model.name, path: model.absolute });
  }
  return { models_dir: directory, models_dir_exists: directoryExists, config: options.configPath, files, incomplete, missing, elsewhere };
}
