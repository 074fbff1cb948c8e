/**
 * An idle timeout for request bodies: a request whose body has not finished arriving and
 * that sent no byte for `idleMs` is abandoned (its connection is closed). It is a timeout
 * between bytes, not a total, so a large upload on a slow but steady link goes on.
 *
 * Activity is the socket's byte count, checked every quarter of `idleMs`, so an idle body
 * is closed between `idleMs` and 1.25 × `idleMs` after its last byte.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export function abortIdleBodies(server: Server, idleMs: number): void {
  const checkEveryMs = Math.max(10, Math.floor(idleMs / 4));
  server.on('request', (incoming: IncomingMessage, response: ServerResponse) => {
    if (incoming.complete) return;
    const socket = incoming.socket;
    let bytesSeen = socket.bytesRead;
    let lastActivity = performance.now();
    const timer = setInterval(() => {
      if (incoming.complete || socket.destroyed) {
        clearInterval(timer);
        return;
      }
      const now = performance.now();
      if (socket.bytesRead !== bytesSeen) {
        bytesSeen = socket.bytesRead;
        lastActivity = now;
      } else if (now - lastActivity >= idleMs) {
        clearInterval(timer);
        socket.destroy();
      }
    }, checkEveryMs);
    timer.unref();
    // Once answered, the request is not held: what is left of its body is drained (and
    // bounded) by @hono/node-server.
    response.once('close', () => clearInterval(timer));
  });
}
