import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { capConnections } from './connection-cap.js';

let server: Server;

async function startServer(max: number): Promise<{ port: number; open: () => number; refused: () => number }> {
  server = createServer((_request, response) => response.end('ok'));
  let refused = 0;
  const cap = capConnections(server, max, () => (refused += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, open: () => cap.open, refused: () => refused };
}

async function connectTo(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

/** Sends a GET and reads until the server closes. */
async function exchange(port: number): Promise<string> {
  const socket = await connectTo(port);
  let received = '';
  socket.setEncoding('utf8').on('data', (text: string) => (received += text));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await closed;
  return received;
}

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('capConnections', () => {
  it('answers connections past the cap with a 503 in OpenAI shape and Connection: close, and counts only served ones', async () => {
    const { port, open, refused } = await startServer(3);
    const held = await Promise.all([1, 2, 3].map(() => connectTo(port)));
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => exchange(port)));
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
      expect(answer).toContain('\r\nConnection: close\r\n');
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
        error: { message: expect.any(String), type: 'server_error', param: null, code: 'server_busy' },
      });
    }
    expect(refused()).toBe(5);
    expect(open()).toBe(3);
    for (const socket of held) socket.destroy();
    for (let attempt = 0; attempt < 100 && open() > 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(open()).toBe(0);
    expect(await exchange(port)).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*ok$/);
  });
});
