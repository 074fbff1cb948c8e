/**
 * What `chatgate pull <source>` downloads: a plain http(s) URL of a .gguf file, or a Hugging
 * Face file named `hf:owner/repo/path/file.gguf` or `owner/repo/path/file.gguf`, with an
 * optional revision (`owner/repo@rev/file.gguf` or `owner/repo/file.gguf@rev`, default `main`),
 * resolved to `{HF_ENDPOINT}/{owner}/{repo}/resolve/{revision}/{path}`.
 */
import { PullError } from './errors.js';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export interface HuggingFaceFile {
  endpoint: string;
  repo: string;
  revision: string;
  /** Path of the file inside the repo (may contain folders); null when the source names only the repo. */
  file: string | null;
}

export interface ModelSource {
  /** What the user typed. */
  text: string;
  /** Where to download from. */
  url: string;
  /** Local file name (the last path segment). */
  fileName: string;
  /** Set for Hugging Face sources (also for URLs on the Hugging Face endpoint). */
  huggingFace: HuggingFaceFile | null;
}

/** A source naming a Hugging Face repo but no .gguf file in it. */
export class RepoWithoutFileError extends PullError {
  constructor(
    readonly huggingFace: HuggingFaceFile,
    message: string,
  ) {
    super(message, 2);
  }
}

export function huggingFaceEndpoint(environment: NodeJS.ProcessEnv): string {
  const value = environment.HF_ENDPOINT?.trim() || DEFAULT_HF_ENDPOINT;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PullError(`HF_ENDPOINT is not a URL: '${value}'`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PullError(`HF_ENDPOINT must be an http(s) URL, got '${value}'`, 2);
  return value.replace(/\/+$/, '');
}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function resolveUrl(file: HuggingFaceFile & { file: string }): string {
  return `${file.endpoint}/${file.repo}/resolve/${encodeURIComponent(file.revision)}/${encodePath(file.file)}`;
}

function checkFileName(fileName: string, source: string): string {
  if (!fileName || fileName === '.' || fileName === '..' || /[\\/\0]/.test(fileName)) {
    throw new PullError(`Cannot tell a file name from '${source}'`, 2);
  }
  if (!/\.gguf$/i.test(fileName)) throw new PullError(`'${source}' does not name a .gguf file (got '${fileName}')`, 2);
  return fileName;
}

function parseUrl(text: string, endpoint: string): ModelSource {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PullError(`Not a valid URL: '${text}'`, 2);
  }
  if (url.username || url.password) throw new PullError('URLs with a user name or password are not supported; use HF_TOKEN for Hugging Face', 2);
  const hf = new URL(endpoint);
  let huggingFace: HuggingFaceFile | null = null;
  if (url.origin === hf.origin) {
    const prefix = hf.pathname.replace(/\/+$/, '');
    const rest = url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length + 1) : null;
    // A browser link to a file page (…/blob/main/x.gguf) means the file itself (…/resolve/main/x.gguf).
    const match = rest === null ? null : /^([^/]+\/[^/]+)\/(?:blob|resolve)\/([^/]+)\/(.+)$/.exec(rest);
    if (match) {
      const [, repo, revision, file] = match as unknown as [string, string, string, string];
      huggingFace = { endpoint, repo, revision: decodeURIComponent(revision), file: decodeURIComponent(file) };
      url = new URL(`${resolveUrl({ ...huggingFace, file: huggingFace.file! })}${url.search}`);
    }
  }
  const segments = url.pathname.split('/');
  let fileName: string;
  try {
    fileName = decodeURIComponent(segments[segments.length - 1] ?? '');
  } catch {
    throw new PullError(`Cannot tell a file name from '${text}'`, 2);
  }
  return { text, url: url.toString(), fileName: checkFileName(fileName, text), huggingFace };
}

/** Parses a `pull` source; throws PullError (or RepoWithoutFileError) on bad input. */
export function parseSource(input: string, environment: NodeJS.ProcessEnv = process.env): ModelSource {
  const text = input.trim();
  if (!text) throw new PullError('Missing source: give a URL or a Hugging Face file such as owner/repo/file.gguf', 2);
  const endpoint = huggingFaceEndpoint(environment);
  if (/^https?:\/\//i.test(text)) return parseUrl(text, endpoint);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new PullError(`Unsupported URL scheme in '${text}': use http(s) or a Hugging Face name`, 2);

  let rest = text.replace(/^(hf|huggingface):(\/\/)?/i, '');
  let revision: string | null = null;
  // owner/repo/file.gguf@revision
  const trailing = /@([^@/][^@]*)$/.exec(rest);
  if (trailing && /\.gguf@/i.test(rest)) {
    revision = trailing[1]!;
    rest = rest.slice(0, trailing.index);
  }
  const parts = rest.split('/').filter((part, index, all) => part !== '' || index === all.length - 1);
  if (parts.length < 2) {
    throw new PullError(
      `Not a URL or a Hugging Face file: '${text}' (expected https://…/file.gguf, hf:owner/repo/file.gguf or owner/repo/file.gguf)`,
      2,
    );
  }
  const owner = parts[0]!;
  let repoName = parts[1]!;
  // owner/repo@revision/file.gguf
  const at = repoName.indexOf('@');
  if (at >= 0) {
    if (revision !== null) throw new PullError(`Two revisions in '${text}'`, 2);
    revision = repoName.slice(at + 1);
    repoName = repoName.slice(0, at);
    if (!revision) throw new PullError(`Empty revision after '@' in '${text}'`, 2);
  }
  if (!REPO_PART.test(owner) || !REPO_PART.test(repoName) || repoName.endsWith('.gguf')) {
    throw new PullError(`Not a Hugging Face repo: '${owner}/${repoName}' in '${text}' (expected owner/repo/file.gguf)`, 2);
  }
  const filePath = parts.slice(2).join('/');
  if (filePath.split('/').some((segment) => segment === '..' || segment === '.')) {
    throw new PullError(`Invalid file path in '${text}'`, 2);
  }
  const huggingFace: HuggingFaceFile = { endpoint, repo: `${owner}/${repoName}`, revision: revision ?? 'main', file: filePath || null };
  if (!filePath || !/\.gguf$/i.test(filePath)) {
    throw new RepoWithoutFileError(
      huggingFace,
      filePath
        ? `'${text}' does not name a .gguf file: give the file's path in the repo, e.g. ${huggingFace.repo}/model-Q4_K_M.gguf`
        : `'${text}' names a repo but no file: give the .gguf file too, e.g. ${huggingFace.repo}/model-Q4_K_M.gguf`,
    );
  }
  const fileName = filePath.split('/').pop()!;
  return { text, url: resolveUrl({ ...huggingFace, file: filePath }), fileName: checkFileName(fileName, text), huggingFace };
}

/** The model name derived from a file name: lowercase, `.gguf` stripped, spaces as dashes. */
export function modelNameFromFile(fileName: string): string {
  const name = fileName
    .replace(/\.gguf$/i, '')
    .toLowerCase()
    .replace(/\s+/g, '-')
    .replace(/^\/+/, '');
  return name || 'model';
}
