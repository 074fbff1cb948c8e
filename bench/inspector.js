// A minimal client of the V8 inspector protocol over a process's loopback WebSocket (a server
// started with `--inspect=127.0.0.1:0`), for benchmarks that look inside the server without
// product code: a full GC (HeapProfiler.collectGarbage) and process.memoryUsage().

import fs from 'node:fs';
import { WebSocket } from 'undici';
import { sleep } from './harness.js';

/** The `ws://127.0.0.1:…` URL a process printed ("Debugger listening on …") in `errFile`. */
export async function inspectorUrl(errFile, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let text = '';
    try {
      text = fs.readFileSync(errFile, 'utf8');
    } catch {}
    const match = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(text);
    if (match) return match[1];
    await sleep(50);
  }
  throw new Error(`no "Debugger listening on ws://127.0.0.1:…" line in ${errFile}`);
}

/** Opens a session; `send(method, params)` resolves with the result; `close()` ends it. */
export async function connectInspector(url) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', (event) => reject(new Error(`inspector: ${event.message ?? 'connection failed'}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data));
    const waiter = message.id !== undefined ? pending.get(message.id) : undefined;
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
    else waiter.resolve(message.result);
  });
  socket.addEventListener('close', () => {
    for (const waiter of pending.values()) waiter.reject(new Error('inspector: connection closed'));
    pending.clear();
  });
  return {
    send(method, params = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close() {
      socket.close();
    },
  };
}

/**
 * Forces full garbage collections in the inspected process (twice: finalizers of the first
 * may free more) and returns its process.memoryUsage() afterwards, in bytes.
 */
export async function memoryAfterFullGc(url) {
  const session = await connectInspector(url);
  try {
    await session.send('HeapProfiler.collectGarbage');
    await session.send('HeapProfiler.collectGarbage');
    const { result } = await session.send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    return JSON.parse(result.value);
  } finally {
    session.close();
  }
}
