/** The one place where errors become HTTP responses in OpenAI's envelope. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { GatewayError, internalError, invalidRequest, requestTooLarge, toGatewayError } from './gateway-error.js';
import { bodyAbandoned, clientClosedBody } from './client-abort.js';

export function asGatewayError(error: unknown, maxBodyBytes: number): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof HTTPException) {
    if (error.status === 413) return requestTooLarge(maxBodyBytes);
    if (error.status >= 400 && error.status < 500) return new GatewayError({ status: error.status, type: 'invalid_request_error', message: error.message || 'Bad request.' });
    return internalError();
  }
  if (error instanceof SyntaxError) return invalidRequest('We could not parse the JSON body of your request. The body must be a JSON object.');
  return toGatewayError(error);
}

export function errorResponse(error: GatewayError, context: Context): Response {
  context.set('errorCode', error.code ?? error.type);
  const headers: Record<string, string> = { ...error.headers, 'x-chatgate-error-source': error.source };
  return context.json(error.toBody(), error.status as 400, headers);
}

export function createErrorHandler(logger: Logger, maxBodyBytes: number) {
  return (error: Error, context: Context): Response => {
    // A body read that failed because the client went away: a client abort, not our error.
    if (!(error instanceof GatewayError) && bodyAbandoned(context)) {
      logger.debug({ requestId: context.get('requestId') }, 'client closed the connection before sending the whole request body');
      return errorResponse(clientClosedBody(), context);
    }
    const gatewayError = asGatewayError(error, maxBodyBytes);
    if (gatewayError.status >= 500 && gatewayError.source === 'gateway') {
      logger.error({ err: error, requestId: context.get('requestId') }, 'unexpected error');
    }
    return errorResponse(gatewayError, context);
  };
}
