/** Reading an upstream response: error answers into GatewayErrors, whole answers into JSON. */
import type { GatewayError } from '../../errors/gateway-error.js';
import type { UpstreamRequestLifetime } from './request-lifetime.js';
import type { UpstreamResponse } from './upstream-client.js';
import { upstreamFailure, upstreamHttpError, upstreamInvalidResponse } from './upstream-error.js';

/** Any status but 2xx is an error (redirects are not followed: the base URL is wrong). */
export function isErrorStatus(statusCode: number): boolean {
  return statusCode < 200 || statusCode >= 300;
}

/** Reads the body of an error answer (which frees the connection for reuse) into its GatewayError. */
export async function readErrorAnswer(
  response: UpstreamResponse,
  lifetime: UpstreamRequestLifetime,
  apiKey: string | undefined,
): Promise<GatewayError> {
  let bodyText = '';
  try {
    bodyText = await response.body.text();
  } catch (error) {
    if (lifetime.cause !== undefined) return upstreamFailure(error, lifetime.cause, 'body', lifetime.timeoutMs);
    // The status says enough when the body cannot be read.
  } finally {
    lifetime.release();
  }
  return upstreamHttpError(response.statusCode, response.headers, bodyText, apiKey);
}

/** The JSON body of a whole (non-streamed) answer; throws the GatewayError of anything else. */
export async function readJsonAnswer(
  response: UpstreamResponse,
  lifetime: UpstreamRequestLifetime,
  apiKey: string | undefined,
): Promise<Record<string, unknown>> {
  if (isErrorStatus(response.statusCode)) throw await readErrorAnswer(response, lifetime, apiKey);
  let bodyText: string;
  try {
    bodyText = await response.body.text();
  } catch (error) {
    throw upstreamFailure(error, lifetime.cause, 'body', lifetime.timeoutMs);
  } finally {
    lifetime.release();
  }
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    throw upstreamInvalidResponse('The upstream answered with a body that is not JSON.');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw upstreamInvalidResponse('The upstream answered with JSON that is not an object.');
  }
  const record = body as Record<string, unknown>;
  if (record['error'] !== undefined && record['error'] !== null) {
    throw upstreamHttpError(response.statusCode, response.headers, bodyText, apiKey);
  }
  return record;
}

/** True when a response to a streaming request is JSON rather than an event stream. */
export function isJsonResponse(response: UpstreamResponse): boolean {
  const contentType = response.headers['content-type'];
  return typeof contentType === 'string' && contentType.includes('json');
}
