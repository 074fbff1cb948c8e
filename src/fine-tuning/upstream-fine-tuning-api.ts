/**
 * An OpenAI-compatible upstream's files and fine-tuning API, as JSON objects, for the upstream
 * trainer (upstream-trainer.ts): uploads streamed from disk, job create / retrieve / actions,
 * event and checkpoint pages. Failures are UpstreamCallErrors that say whether they are worth
 * retrying and whether the request may have reached the upstream.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { FormData, request, type Dispatcher } from 'undici';
import type { OpenAiCompatibleModelConfig } from '../config/schema.js';
import { upstreamHttpError } from '../providers/openai-compatible/upstream-error.js';
import { resolveUpstreamTarget, type UpstreamTarget } from '../providers/openai-compatible/upstream-target.js';
import { TrainerError } from './trainer-spec.js';

export type Json = Record<string, unknown>;

/** Connection errors after which the request surely never reached the upstream. */
const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
export const pageLimit = 100;

/** An upstream call that failed: `status` null when no answer came. */
export class UpstreamCallError extends Error {
  constructor(
    readonly status: number | null,
    readonly code: string,
    message: string,
    /** False when the request surely never reached the upstream. */
    readonly maybeSent: boolean,
  ) {
    super(message);
    this.name = 'UpstreamCallError';
  }

  get retriable(): boolean {
    return this.status === null || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The upstream's fine-tuning and files API, as JSON objects. */
export class FineTuningApi {
  private readonly target: UpstreamTarget;
  private readonly baseUrl: URL;
  private readonly headers: Record<string, string>;

  constructor(
    config: OpenAiCompatibleModelConfig,
    private readonly dispatcher: Dispatcher | undefined,
  ) {
    this.target = resolveUpstreamTarget(config);
    this.baseUrl = new URL(config.base_url);
    this.headers = {};
    const list = this.target.jsonHeaders;
    for (let index = 0; index + 1 < list.length; index += 2) this.headers[list[index]!] = list[index + 1]!;
  }

  get upstreamModel(): string {
    return this.target.upstreamModel;
  }

  async uploadFile(path: string, signal: AbortSignal): Promise<string> {
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', await openAsBlob(path, { type: 'application/jsonl' }), basename(path));
    const file = await this.call('POST', '/files', { form, signal });
    return requireId(file, 'file');
  }

  createJob(body: Json): Promise<Json> {
    return this.call('POST', '/fine_tuning/jobs', { json: body, signal: null });
  }

  job(id: string, signal: AbortSignal): Promise<Json> {
    return this.call('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}`, { signal });
  }

  action(id: string, action: 'cancel' | 'pause' | 'resume', signal: AbortSignal | null): Promise<Json> {
    return this.call('POST', `/fine_tuning/jobs/${encodeURIComponent(id)}/${action}`, { signal });
  }

  list(id: string, what: 'events' | 'checkpoints', after: string | undefined, signal: AbortSignal): Promise<Json> {
    const query: Record<string, string> = { limit: String(pageLimit) };
    if (after !== undefined) query['after'] = after;
    return this.call('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}/${what}`, { query, signal });
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    options: { json?: unknown; form?: FormData; query?: Record<string, string>; signal: AbortSignal | null },
  ): Promise<Json> {
    const url = new URL(this.baseUrl);
    url.pathname = `${url.pathname.replace(/\/$/, '')}${path}`;
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    const headers = { ...this.headers };
    let body: string | FormData | undefined;
    if (options.form !== undefined) {
      delete headers['content-type'];
      body = options.form;
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
    } else {
      delete headers['content-type'];
    }
    const timeout = AbortSignal.timeout(this.target.timeoutMs);
    const signal = options.signal === null ? timeout : AbortSignal.any([options.signal, timeout]);
    const where = `${method} ${url.pathname}`;
    let status: number;
    let responseHeaders: Dispatcher.ResponseData['headers'];
    let text: string;
    try {
      const response = await request(url, { method, headers, body, signal, ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }) });
      status = response.statusCode;
      responseHeaders = response.headers;
      text = await response.body.text();
    } catch (error) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      const code = errorCode(error) ?? (timeout.aborted ? 'timeout' : 'network_error');
      throw new UpstreamCallError(null, 'upstream_unreachable', `${where}: the upstream could not be reached (${code}).`, !notSentCodes.has(code));
    }
    if (status < 200 || status >= 300) {
      const error = upstreamHttpError(status, responseHeaders, text, this.target.apiKey);
      throw new UpstreamCallError(status, error.code ?? 'upstream_error', error.message, true);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!isRecord(parsed)) throw new UpstreamCallError(status, 'upstream_invalid_response', `${where}: the upstream answered with something that is not a JSON object.`, true);
    return parsed;
  }
}

export function requireId(object: Json, what: string): string {
  const id = object['id'];
  if (typeof id !== 'string' || id === '') throw new TrainerError('upstream_invalid_response', `The upstream answered without the ${what}'s id.`);
  return id;
}

export function errorCode(error: unknown): string | undefined {
  if (!isRecord(error)) return undefined;
  if (typeof error['code'] === 'string') return error['code'];
  if (isRecord(error['cause'])) return errorCode(error['cause']);
  const errors = error['errors'];
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0]);
  return undefined;
}

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
