import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { abortIdleBodies } from './body-idle-timeout.js';

const IDLE_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let server: Server;

/** A server that answers once it has read the whole body, with the body's length. */
async function startServer(): Promise<number> {
  server = createServer((request, response) => {
    let length = 0;
    request.on('data', (chunk: Buffer) => (length += chunk.length));
    request.on('end', () => response.end(String(length)));
    request.on('error', () => undefined);
  });
  abortIdleBodies(server, IDLE_MS);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function open(port: number, length: number): Promise<{ socket: Socket; closed: Promise<number>; received: () => string }> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  let received = '';
  socket.setEncoding('utf8').on('data', (text: string) => (received += text));
  socket.on('error', () => undefined);
  socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(performance.now() - started))), received: () => received };
}

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('abortIdleBodies', () => {
  it('closes a connection whose body stops arriving, between the idle timeout and 1.25 × it (plus timer slack)', async () => {
    const port = await startServer();
    const connection = await open(port, 100);
    connection.socket.write('x'.repeat(10));
    const elapsed = await Promise.race([connection.closed, sleep(5000).then(() => Number.POSITIVE_INFINITY)]);
    expect(elapsed).toBeGreaterThanOrEqual(IDLE_MS * 0.9);
    expect(elapsed).toBeLessThan(5000);
    expect(connection.received()).toBe('');
  });

  it('lets a body through that keeps arriving for several idle timeouts', async () => {
    const port = await startServer();
    const connection = await open(port, 20);
    for (let index = 0; index < 20; index++) {
      connection.socket.write('x');
      await sleep(IDLE_MS / 5);
    }
    await connection.closed;
    expect(connection.received()).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\n20$/);
  });

  it('does not touch a request once it is answered (keep-alive connections stay open)', async () => {
    const port = await startServer();
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    let closed = false;
    socket.once('close', () => (closed = true));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab');
    await sleep(IDLE_MS * 3);
    expect(closed).toBe(false);
    socket.destroy();
  });
});
