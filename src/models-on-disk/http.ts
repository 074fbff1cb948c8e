/**
 * GET / HEAD through undici with redirects followed by hand, so that the headers of every hop
 * are seen (Hugging Face puts the file's sha256 in `x-linked-etag` on its redirect to the CDN)
 * and the Authorization header goes only to the origin it was meant for.
 */
import { request, type Dispatcher } from 'undici';
import { PullError, describeError } from './errors.js';

const MAX_REDIRECTS = 10;

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered (after redirects). */
  url: string;
  /** `x-linked-etag` / `x-linked-size` seen on any hop (Hugging Face LFS files). */
  linkedEtag: string | null;
  linkedSize: number | null;
}

export interface HttpRequestOptions {
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  /** Sent only to `authOrigin` (not to the CDN a redirect leads to). */
  authorization?: string | undefined;
  authOrigin?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** A network failure worth retrying (the connection dropped, timed out, was refused…). */
export class NetworkError extends PullError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'NetworkError';
  }
}

export function headerValue(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function httpRequest(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
  let current = new URL(url);
  let linkedEtag: string | null = null;
  let linkedSize: number | null = null;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'chatgate-pull', ...options.headers };
    if (options.authorization && options.authOrigin === current.origin) headers.authorization = options.authorization;
    let response;
    try {
      response = await request(current, { method: options.method, headers, signal: options.signal, headersTimeout: 60_000, bodyTimeout: 60_000 });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new NetworkError(`cannot reach ${url}: ${describeError(error)}`);
    }
    const etag = headerValue(response.headers, 'x-linked-etag');
    if (etag) linkedEtag = etag;
    const size = Number(headerValue(response.headers, 'x-linked-size'));
    if (Number.isSafeInteger(size) && size >= 0 && headerValue(response.headers, 'x-linked-size') !== undefined) linkedSize = size;
    const location = headerValue(response.headers, 'location');
    if ([301, 302, 303, 307, 308].includes(response.statusCode) && location) {
      await response.body.dump().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new PullError(`too many redirects from ${url}`);
      const next = new URL(location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new PullError(`redirected to an unsupported URL scheme from ${url}`);
      current = next;
      continue;
    }
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: response.body,
      url: current.toString(),
      linkedEtag,
      linkedSize,
    };
  }
}

/** A 64-hex sha256 from an ETag-like header value (quotes and `W/` removed), else null. */
export function sha256FromEtag(value: string | null | undefined): string | null {
  if (!value) return null;
  const stripped = value.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return /^[0-9a-f]{64}$/i.test(stripped) ? stripped.toLowerCase() : null;
}

/** Throws the one-line error for a failed HTTP status. */
export function statusError(statusCode: number, url: string, environment: NodeJS.ProcessEnv): PullError {
  if (statusCode === 404 || statusCode === 410) return new PullError(`not found: ${url}`);
  if (statusCode === 401 || statusCode === 403) {
    const hint = environment.HF_TOKEN
      ? 'HF_TOKEN was sent but does not grant access (for a gated repo, accept its terms on the website first)'
      : 'for a gated or private Hugging Face repo, set HF_TOKEN to an access token';
    return new PullError(`access denied (HTTP ${statusCode}) for ${url}: ${hint}`);
  }
  if (statusCode === 429 || statusCode >= 500) return new NetworkError(`HTTP ${statusCode} from ${url}`);
  return new PullError(`HTTP ${statusCode} from ${url}`);
}
