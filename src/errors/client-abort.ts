/**
 * A client that abandons its request body (closes the connection mid-body, or stops
 * sending until the body idle timeout closes it) is a client abort: 499 as nginx records
 * it, not a server error. Nobody reads the answer; the audit log and metrics do.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { GatewayError } from './gateway-error.js';

/** The Node request behind the context, when served by @hono/node-server. */
function nodeIncoming(context: Context): IncomingMessage | undefined {
  const env: unknown = context.env;
  if (typeof env !== 'object' || env === null || !('incoming' in env)) return undefined;
  const incoming = (env as { incoming: unknown }).incoming;
  return typeof incoming === 'object' && incoming !== null && 'complete' in incoming ? (incoming as IncomingMessage) : undefined;
}

/** Whether the request's body stopped arriving because its connection is gone. */
export function bodyAbandoned(context: Context): boolean {
  const incoming = nodeIncoming(context);
  if (incoming !== undefined) return !incoming.complete && incoming.destroyed;
  return context.req.raw.signal.aborted;
}

export function clientClosedBody(): GatewayError {
  return new GatewayError({
    status: 499,
    type: 'invalid_request_error',
    code: 'client_closed_request',
    message: 'The client closed the connection before sending the whole request body.',
  });
}
