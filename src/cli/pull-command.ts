/**
 * `chatgate pull <source>`: downloads a GGUF model into the models folder (resumable,
 * sha256-verified), checks it is a GGUF file and registers it in the config file.
 */
import { mkdir, rename, statfs, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { download, hashFile, probe, removePart } from '../models-on-disk/download.js';
import { PullError, describeError } from '../models-on-disk/errors.js';
import { formatBytes } from '../models-on-disk/format.js';
import { hasGgufMagic } from '../models-on-disk/gguf.js';
import { headerValue, httpRequest } from '../models-on-disk/http.js';
import { resolveLocations } from '../models-on-disk/locations.js';
import { createProgress } from '../models-on-disk/progress.js';
import { registerModel } from '../models-on-disk/register.js';
import { RepoWithoutFileError, modelNameFromFile, parseSource, type HuggingFaceFile, type ModelSource } from '../models-on-disk/source.js';

export const PULL_USAGE = `Usage: chatgate pull <source> [options]

Sources:
  https://host/path/model.gguf         a plain URL (http:// too)
  owner/repo/path/model.gguf           a file of a Hugging Face repo (also hf:owner/repo/...)
  owner/repo/model.gguf@revision       a branch, tag or commit (default main); or owner/repo@revision/model.gguf

Options of pull:
  --models-dir DIR  Where models are stored (default: <data dir>/models)
  --data-dir DIR    Data directory (default: data_dir of the config, else ./.chatgate)
  --config FILE     Config file the model is added to (default ./chatgate.yaml; created if missing)
  --name NAME       Model name clients use (default: the file name, lowercase, without .gguf)
  --sha256 HEX      Expected sha256 of the file (else the one Hugging Face announces, if any)
  --no-register     Only download; do not touch the config file
  --force           Replace a model of the same name, or a local file that differs
  --retries N       Attempts after a dropped connection (default 3)
  --quiet, -q       No progress output

Environment:
  HF_TOKEN          Hugging Face access token (gated or private repos)
  HF_ENDPOINT       Hugging Face endpoint (default https://huggingface.co)
`;

const NAME_PATTERN = /^[^\s/][^\s]*$/;

interface Output {
  info(line: string): void;
  result(line: string): void;
}

/** Lists the .gguf files of a repo (best effort) to help the user pick one. */
async function listRepoGgufFiles(huggingFace: HuggingFaceFile, authorization: string | undefined): Promise<string[] | null> {
  const url = `${huggingFace.endpoint}/api/models/${huggingFace.repo}/tree/${encodeURIComponent(huggingFace.revision)}?recursive=true`;
  try {
    const response = await httpRequest(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      authorization,
      authOrigin: new URL(huggingFace.endpoint).origin,
      signal: AbortSignal.timeout(15_000),
    });
    if (response.statusCode !== 200 || !/json/.test(headerValue(response.headers, 'content-type') ?? 'json')) {
      await response.body.dump().catch(() => undefined);
      return null;
    }
    const entries = (await response.body.json()) as unknown;
    if (!Array.isArray(entries)) return null;
    return entries
      .filter((entry): entry is { type: string; path: string } => !!entry && typeof entry === 'object' && typeof entry.path === 'string')
      .filter((entry) => entry.type === 'file' && /\.gguf$/i.test(entry.path))
      .map((entry) => entry.path);
  } catch {
    return null;
  }
}

function authorizationFor(source: ModelSource, environment: NodeJS.ProcessEnv): { authorization?: string; authOrigin?: string } {
  const token = environment.HF_TOKEN?.trim();
  if (!token || !source.huggingFace) return {};
  return { authorization: `Bearer ${token}`, authOrigin: new URL(source.huggingFace.endpoint).origin };
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function pullCommand(args: string[], environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'models-dir': { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      name: { type: 'string' },
      sha256: { type: 'string' },
      'no-register': { type: 'boolean' },
      force: { type: 'boolean', short: 'f' },
      retries: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(PULL_USAGE);
    return 0;
  }
  const quiet = values.quiet === true;
  const output: Output = {
    info: (line) => {
      if (!quiet) process.stderr.write(`${line}\n`);
    },
    result: (line) => process.stdout.write(`${line}\n`),
  };
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await pull(values, positionals, environment, output, controller.signal);
  } catch (error) {
    if (controller.signal.aborted) {
      process.stderr.write('\nInterrupted: the partial download is kept; run the same command again to resume.\n');
      return 130;
    }
    if (error instanceof PullError) {
      process.stderr.write(`chatgate pull: ${error.message}\n`);
      return error.exitCode;
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      process.stderr.write(`chatgate pull: ${describeError(error)}\n`);
      return 1;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

interface PullValues {
  'models-dir'?: string | undefined;
  'data-dir'?: string | undefined;
  config?: string | undefined;
  name?: string | undefined;
  sha256?: string | undefined;
  'no-register'?: boolean | undefined;
  force?: boolean | undefined;
  retries?: string | undefined;
  quiet?: boolean | undefined;
}

async function pull(values: PullValues, positionals: string[], environment: NodeJS.ProcessEnv, output: Output, signal: AbortSignal): Promise<number> {
  if (positionals.length !== 1) {
    throw new PullError(positionals.length === 0 ? `missing <source>\n\n${PULL_USAGE}` : `expected one <source>, got ${positionals.length}: ${positionals.join(' ')}`, 2);
  }
  const expectedSha256 = values.sha256?.trim().toLowerCase();
  if (expectedSha256 !== undefined && !/^[0-9a-f]{64}$/.test(expectedSha256)) throw new PullError('--sha256 must be 64 hexadecimal characters', 2);
  if (values.name !== undefined && !NAME_PATTERN.test(values.name)) throw new PullError(`--name must not contain spaces or start with "/", got '${values.name}'`, 2);
  let retries = 3;
  if (values.retries !== undefined) {
    if (!/^\d+$/.test(values.retries) || Number(values.retries) > 100) throw new PullError(`--retries must be a number from 0 to 100, got '${values.retries}'`, 2);
    retries = Number(values.retries);
  }
  const register = values['no-register'] !== true;
  const force = values.force === true;
  const workingDirectory = process.cwd();

  let source: ModelSource;
  try {
    source = parseSource(positionals[0]!, environment);
  } catch (error) {
    if (error instanceof RepoWithoutFileError) {
      const files = await listRepoGgufFiles(error.huggingFace, environment.HF_TOKEN ? `Bearer ${environment.HF_TOKEN.trim()}` : undefined);
      if (files && files.length > 0) {
        const shown = files.slice(0, 30).map((file) => `\n  ${error.huggingFace.repo}/${file}`).join('');
        throw new PullError(`${error.message}\nGGUF files in ${error.huggingFace.repo}:${shown}${files.length > 30 ? `\n  … and ${files.length - 30} more` : ''}`, 2);
      }
    }
    throw error;
  }
  const name = values.name ?? modelNameFromFile(source.fileName);
  if (!NAME_PATTERN.test(name)) throw new PullError(`cannot derive a model name from '${source.fileName}': give one with --name`, 2);

  const locations = resolveLocations({
    config: values.config,
    modelsDir: values['models-dir'],
    dataDir: values['data-dir'],
    environment,
    workingDirectory,
  });
  try {
    await mkdir(locations.modelsDirectory, { recursive: true });
  } catch (error) {
    throw new PullError(`cannot create the models folder ${locations.modelsDirectory}: ${describeError(error)}`);
  }
  const target = join(locations.modelsDirectory, source.fileName);
  const partPath = `${target}.part`;
  const auth = authorizationFor(source, environment);
  const requestBase = { url: source.url, ...auth, environment, signal };

  let sha256: string;
  let reused = false;
  if ((await fileExists(target)) && !(await existingIsStale())) {
    reused = true;
  } else {
    sha256 = await fetchToPart();
    await rename(partPath, target).catch((error: unknown) => {
      throw new PullError(`cannot move ${partPath} to ${target}: ${describeError(error)}`);
    });
    await removePart(partPath);
  }
  sha256 ??= (await hashFile(target, undefined, signal)).digest('hex');
  if (reused && !(await hasGgufMagic(target))) throw new PullError(`${target} exists but is not a GGUF file; remove it or use --force`);
  output.result(`${reused ? 'Already downloaded' : 'Downloaded'}: ${target}`);
  output.result(`sha256: ${sha256}`);

  if (!register) return 0;
  const outcome = await registerModel({ configPath: locations.configPath, name, modelPath: target, force, environment, workingDirectory });
  const messages: Record<typeof outcome, string> = {
    created: `Created ${locations.configPath} with the model '${name}'`,
    added: `Added the model '${name}' to ${locations.configPath}`,
    unchanged: `The model '${name}' is already in ${locations.configPath}`,
    updated: `Pointed the model '${name}' in ${locations.configPath} at the new file`,
    replaced: `Replaced the model '${name}' in ${locations.configPath}`,
  };
  output.result(messages[outcome]);
  return 0;

  /** Whether an existing target must be downloaded again (only with --force when it differs). */
  async function existingIsStale(): Promise<boolean> {
    const local = (await stat(target)).size;
    let remote: { size: number | null; sha256: string | null } = { size: null, sha256: null };
    if (expectedSha256 === undefined) {
      try {
        remote = await probe(requestBase);
      } catch (error) {
        if (signal.aborted) throw error;
        output.info(`Could not check ${source.url} (${error instanceof Error ? error.message : String(error)}); keeping the existing ${target}`);
        return false;
      }
    }
    const wanted = expectedSha256 ?? remote.sha256;
    let differs: string | null = null;
    if (wanted) {
      output.info(`${target} exists: checking its sha256`);
      const actual = (await hashFile(target, undefined, signal)).digest('hex');
      sha256 = actual;
      if (actual !== wanted) differs = `its sha256 is ${actual}, expected ${wanted}`;
    } else if (remote.size !== null && remote.size !== local) {
      differs = `it has ${local} bytes, the remote file ${remote.size}`;
    } else {
      output.info(`${target} exists${remote.size !== null ? ' with the same size' : ''}; no checksum to compare`);
    }
    if (differs === null) return false;
    if (!force) throw new PullError(`${target} already exists and differs from ${source.url} (${differs}); use --force to download it again`);
    output.info(`${target} differs (${differs}): downloading again`);
    return true;
  }

  async function fetchToPart(): Promise<string> {
    output.info(`Pulling ${source.url}${auth.authorization ? ' (with HF_TOKEN)' : ''}\n  into ${target}`);
    const progress = createProgress({ stream: process.stderr, quiet: values.quiet === true });
    const result = await download({
      ...requestBase,
      partPath,
      retries,
      log: (line) => {
        progress.done();
        output.info(line);
      },
      onStart: ({ total, resumedFrom }) => {
        if (total !== null) void checkFreeSpace(total - resumedFrom);
        progress.start(total, resumedFrom);
      },
      onProgress: (bytes) => progress.update(bytes),
    }).finally(() => progress.done());
    output.info(`Received ${formatBytes(result.bytes)}`);
    const wanted = expectedSha256 ?? result.remoteSha256;
    if (wanted && result.sha256 !== wanted) {
      await removePart(partPath);
      throw new PullError(
        `sha256 mismatch for ${source.url}: expected ${wanted}${expectedSha256 ? '' : ' (announced by the server)'}, got ${result.sha256}; the download was deleted`,
      );
    }
    output.info(wanted ? 'sha256 verified' : 'No sha256 announced by the server to verify against (pass --sha256 HEX to check one)');
    if (!(await hasGgufMagic(partPath))) {
      await removePart(partPath);
      throw new PullError(`${source.url} is not a GGUF file (it does not start with the bytes 'GGUF'); the download was deleted`);
    }
    return result.sha256;
  }

  async function checkFreeSpace(needed: number): Promise<void> {
    try {
      const stats = await statfs(locations.modelsDirectory);
      const free = stats.bavail * stats.bsize;
      if (needed > free) output.info(`Warning: ${formatBytes(needed)} still to download but only ${formatBytes(free)} free in ${locations.modelsDirectory}`);
    } catch {
      // statfs is informative only.
    }
  }
}
