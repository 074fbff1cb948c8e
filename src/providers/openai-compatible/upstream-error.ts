/**
 * Everything that goes wrong with an upstream, as GatewayErrors with source 'upstream':
 * HTTP error answers (status kept, OpenAI envelope carried over), unreachable upstreams (502),
 * timeouts (504) and failures in the middle of a stream (502). Messages never contain the
 * upstream's API key.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../../errors/gateway-error.js';
import type { AbortCause } from './request-lifetime.js';
import type { UpstreamErrorBody } from './upstream-types.js';

/** Where the request was when it failed. */
export type FailurePhase = 'connect' | 'body' | 'stream';

/** Response headers copied from an upstream error onto ours (the SDKs honour them). */
const copiedHeaderNames = ['retry-after', 'retry-after-ms'] as const;

const longestQuotedBody = 500;

const timeoutErrorCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** An upstream answer with a status of 400 or more (or a 2xx carrying an error envelope). */
export function upstreamHttpError(
  status: number,
  headers: IncomingHttpHeaders,
  bodyText: string,
  apiKey: string | undefined,
): GatewayError {
  const envelope = parseErrorEnvelope(bodyText);
  const upstreamMessage = envelope?.message ?? quoteBody(bodyText);
  const clientStatus = status >= 400 && status <= 599 ? status : 502;
  return new GatewayError({
    status: clientStatus,
    source: 'upstream',
    type: envelope?.type ?? defaultErrorType(clientStatus),
    code: envelope?.code ?? (clientStatus === 429 ? 'rate_limit_exceeded' : null),
    param: envelope?.param ?? null,
    message: redactSecret(
      upstreamMessage === '' ? `Upstream error (HTTP ${status}).` : `Upstream error (HTTP ${status}): ${upstreamMessage}`,
      apiKey,
    ),
    headers: copyRetryHeaders(headers),
  });
}

/** An `{"error": …}` frame (or `event: error`) in the middle of an upstream stream. */
export function upstreamErrorFrame(error: UpstreamErrorBody | string | null | undefined, apiKey: string | undefined): GatewayError {
  const envelope =
    typeof error === 'string'
      ? readEnvelope({ message: error })
      : error === null || error === undefined || typeof error !== 'object'
        ? undefined
        : readEnvelope(error);
  const detail = envelope?.message;
  return upstreamStreamError(
    redactSecret(detail === undefined || detail === '' ? 'The upstream sent an error in its stream.' : `Upstream error mid-stream: ${detail}`, apiKey),
    envelope?.param ?? null,
  );
}

export function upstreamStreamError(message: string, param: string | null = null, cause?: unknown): GatewayError {
  return new GatewayError({ status: 502, source: 'upstream', type: 'upstream_error', code: 'upstream_stream_error', param, message, cause });
}

export function upstreamInvalidResponse(message: string): GatewayError {
  return new GatewayError({ status: 502, source: 'upstream', type: 'upstream_error', code: 'upstream_invalid_response', message });
}

export function upstreamTimeout(timeoutMs: number, cause?: unknown): GatewayError {
  return new GatewayError({
    status: 504,
    source: 'upstream',
    type: 'upstream_error',
    code: 'upstream_timeout',
    message: `The upstream did not finish answering within ${timeoutMs} ms.`,
    cause,
  });
}

/** The client went away (its signal aborted); nobody will read this error but the logs. */
export function clientClosedRequest(): GatewayError {
  return new GatewayError({
    status: 499,
    source: 'gateway',
    type: 'invalid_request_error',
    code: 'client_closed_request',
    message: 'The client closed the request before the upstream finished answering.',
  });
}

/**
 * Turns whatever undici threw (or the abort that caused it) into a GatewayError. `cause` is
 * the lifetime's abort cause, which tells a timeout from a client disconnect whatever the
 * shape of the thrown error.
 */
export function upstreamFailure(error: unknown, cause: AbortCause | undefined, phase: FailurePhase, timeoutMs: number): GatewayError {
  if (error instanceof GatewayError) return error;
  if (cause === 'client') return clientClosedRequest();
  const code = errorCode(error);
  if (cause === 'timeout' || (code !== undefined && timeoutErrorCodes.has(code))) return upstreamTimeout(timeoutMs, error);
  const reason = code === undefined ? '' : ` (${code})`;
  switch (phase) {
    case 'connect':
      return new GatewayError({
        status: 502,
        source: 'upstream',
        type: 'upstream_error',
        code: 'upstream_unreachable',
        message: `The upstream could not be reached${reason}.`,
        cause: error,
      });
    case 'body':
      return new GatewayError({
        status: 502,
        source: 'upstream',
        type: 'upstream_error',
        code: 'upstream_connection_lost',
        message: `The upstream connection failed before the answer was complete${reason}.`,
        cause: error,
      });
    case 'stream':
      return upstreamStreamError(`The upstream connection failed mid-stream${reason}.`, null, error);
  }
}

/** Replaces the upstream API key (and OpenAI's masked echo of a key, `sk-ab***yz`) in a message. */
export function redactSecret(text: string, secret: string | undefined): string {
  let redacted = text;
  if (secret !== undefined && secret !== '' && redacted.includes(secret)) redacted = redacted.split(secret).join('[redacted]');
  if (redacted.includes('sk-')) redacted = redacted.replace(/\bsk-[\w*-]+/g, '[redacted]');
  return redacted;
}

interface ErrorEnvelope {
  message: string | undefined;
  type: string | undefined;
  code: string | undefined;
  param: string | undefined;
}

/**
 * Reads OpenAI's `{"error":{message,type,code,param}}`, the flat `{"object":"error",message,…}`
 * of older vLLM, and the `{"error":"…"}` of Ollama.
 */
function parseErrorEnvelope(bodyText: string): ErrorEnvelope | undefined {
  if (bodyText === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return undefined;
  }
  if (!isRecord(body)) return undefined;
  const error = body['error'];
  if (isRecord(error)) return readEnvelope(error);
  if (typeof error === 'string') return { message: error, type: undefined, code: undefined, param: undefined };
  if (typeof body['message'] === 'string') return readEnvelope(body);
  if (typeof body['detail'] === 'string') return { message: body['detail'], type: undefined, code: undefined, param: undefined };
  return undefined;
}

function readEnvelope(error: UpstreamErrorBody): ErrorEnvelope {
  return {
    message: typeof error.message === 'string' ? error.message : undefined,
    type: typeof error.type === 'string' && error.type !== '' ? error.type : undefined,
    // OpenAI's codes are strings; some servers send the HTTP status as an integer code.
    code: typeof error.code === 'string' && error.code !== '' ? error.code : undefined,
    param: typeof error.param === 'string' ? error.param : undefined,
  };
}

function quoteBody(bodyText: string): string {
  const trimmed = bodyText.trim();
  return trimmed.length <= longestQuotedBody ? trimmed : `${trimmed.slice(0, longestQuotedBody)}…`;
}

function defaultErrorType(status: number): string {
  if (status >= 500) return 'upstream_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  return 'invalid_request_error';
}

function copyRetryHeaders(headers: IncomingHttpHeaders): Record<string, string> | undefined {
  let copied: Record<string, string> | undefined;
  for (const name of copiedHeaderNames) {
    const value = headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    if (text === undefined || text === '') continue;
    copied ??= {};
    copied[name] = text;
  }
  return copied;
}

function errorCode(error: unknown): string | undefined {
  if (!isRecord(error)) return undefined;
  const code = error['code'];
  if (typeof code === 'string') return code;
  // Happy-eyeballs connection attempts fail with an AggregateError of the per-address errors.
  const errors = error['errors'];
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0]);
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
