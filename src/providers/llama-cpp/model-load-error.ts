/** The error a request gets when its model file cannot be loaded: the path and the reason, no stack. */
import { GatewayError } from '../../errors/gateway-error.js';

export function modelLoadFailed(modelName: string, path: string, reason: string): GatewayError {
  return new GatewayError({
    status: 503,
    type: 'server_error',
    code: 'model_load_failed',
    source: 'upstream',
    message: `The model '${modelName}' could not be loaded from '${path}': ${reason}.`,
  });
}

/** The first line of an error's message, without a trailing period. */
export function shortReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split('\n')[0]?.trim() || 'unknown error';
  return line.replace(/\.$/, '');
}
