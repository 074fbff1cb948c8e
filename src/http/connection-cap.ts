/**
 * A cap on open connections. Past the cap a new connection is not silently reset (what
 * `server.maxConnections` does): it gets a 503 in OpenAI's error shape with
 * `Connection: close`, and is closed. Its request is never parsed, so it reaches no route
 * and no audit record.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How long a refused connection may keep sending before it is closed regardless. */
const REFUSAL_LINGER_MS = 1000;

const REFUSAL_BODY = JSON.stringify({
  error: {
    message: 'The server has too many open connections. Retry shortly.',
    type: 'server_error',
    param: null,
    code: 'server_busy',
  },
});

const REFUSAL = [
  'HTTP/1.1 503 Service Unavailable',
  'Content-Type: application/json',
  `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}`,
  'Connection: close',
  'Retry-After: 1',
  'x-chatgate-error-source: gateway',
  '',
  REFUSAL_BODY,
].join('\r\n');

export interface ConnectionCap {
  /** Connections being served now (refused ones are not counted). */
  readonly open: number;
}

/**
 * Takes over the server's `connection` event: connections within `maxConnections` go to
 * the HTTP server as before, the others get the refusal. Call before `listen`'s first
 * connection (right after creating the server).
 */
export function capConnections(server: Server, maxConnections: number, onRefused: () => void = () => undefined): ConnectionCap {
  const serve = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  let open = 0;
  server.on('connection', (socket: Socket) => {
    if (open >= maxConnections) {
      refuse(socket);
      onRefused();
      return;
    }
    open += 1;
    socket.once('close', () => (open -= 1));
    for (const listener of serve) listener.call(server, socket);
  });
  return {
    get open() {
      return open;
    },
  };
}

/**
 * Writes the 503 and half-closes. What the client sent is read and dropped until it closes
 * too (closing with unread data would reset the connection, and the client might never
 * see the answer), for at most REFUSAL_LINGER_MS.
 */
function refuse(socket: Socket): void {
  socket.on('error', () => undefined);
  socket.resume();
  socket.end(REFUSAL);
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}
