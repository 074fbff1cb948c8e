/**
 * The one error type of Chatgate. Everything that goes wrong while serving a request is
 * thrown as a GatewayError (or turned into one by `toGatewayError`) and rendered into
 * OpenAI's envelope `{"error":{message,type,param,code}}` in exactly one place.
 */

export type ErrorSource = 'gateway' | 'upstream';

export interface GatewayErrorOptions {
  status: number;
  message: string;
  type: string;
  code?: string | null;
  param?: string | null;
  source?: ErrorSource;
  /** Extra response headers, e.g. `retry-after` copied from an upstream 429. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly source: ErrorSource;
  readonly headers: Record<string, string>;

  constructor(options: GatewayErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.status = options.status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.source = options.source ?? 'gateway';
    this.headers = options.headers ?? {};
  }

  /** The body OpenAI sends for an error. */
  toBody(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): GatewayError {
  return new GatewayError({ status: 400, type: 'invalid_request_error', message, param, code });
}

export function missingParameter(param: string): GatewayError {
  return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

export function modelNotFound(model: string): GatewayError {
  return new GatewayError({
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    param: 'model',
    message: `The model '${model}' does not exist or you do not have access to it.`,
  });
}

export function notFound(message: string, param: string | null = null): GatewayError {
  return new GatewayError({ status: 404, type: 'invalid_request_error', code: 'not_found', param, message });
}

export function unknownRoute(method: string, path: string): GatewayError {
  return new GatewayError({
    status: 404,
    type: 'invalid_request_error',
    code: 'unknown_url',
    message: `Unknown request URL: ${method} ${path}. Please check the URL for typos, or see the docs at docs/api.md.`,
  });
}

export function methodNotAllowed(method: string, path: string): GatewayError {
  return new GatewayError({
    status: 405,
    type: 'invalid_request_error',
    code: 'method_not_allowed',
    message: `Method ${method} is not allowed for ${path}.`,
  });
}

export function invalidApiKey(message = 'Incorrect API key provided. You can find your API key in the Chatgate data directory or set CHATGATE_MASTER_KEY.'): GatewayError {
  return new GatewayError({ status: 401, type: 'invalid_request_error', code: 'invalid_api_key', message });
}

export function missingApiKey(): GatewayError {
  return new GatewayError({
    status: 401,
    type: 'invalid_request_error',
    code: 'missing_api_key',
    message:
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
  });
}

export function requestTooLarge(limitBytes: number): GatewayError {
  return new GatewayError({
    status: 413,
    type: 'invalid_request_error',
    code: 'request_too_large',
    message: `The request body is larger than the limit of ${limitBytes} bytes.`,
  });
}

export function contextLengthExceeded(options: {
  contextWindow: number;
  promptTokens: number;
  completionTokens: number;
  param?: string;
  /** The prompt was not counted to its end: `promptTokens` is a lower bound. */
  atLeast?: boolean;
}): GatewayError {
  const total = options.promptTokens + options.completionTokens;
  const atLeast = options.atLeast ? 'at least ' : '';
  const where = options.param === 'input' ? 'the input' : 'the messages';
  const detail =
    options.completionTokens > 0
      ? ` (${atLeast}${options.promptTokens} in ${where}, ${options.completionTokens} in the completion)`
      : ` (${atLeast}${options.promptTokens} in ${where})`;
  return new GatewayError({
    status: 400,
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    param: options.param ?? 'messages',
    message: `This model's maximum context length is ${options.contextWindow} tokens. However, you requested ${atLeast}${total} tokens${detail}. Please reduce the length of the messages or completion.`,
  });
}

export function internalError(message = 'The server had an error while processing your request. Sorry about that!'): GatewayError {
  return new GatewayError({ status: 500, type: 'server_error', code: 'internal_error', message });
}

/** Anything thrown becomes a GatewayError; unknown errors become a 500 that hides internals. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return internalError();
}
