/**
 * Polls a server's `/health` every 50 ms from a separate process (so the test process's
 * own work — building and sending a 20 MB body — cannot delay the polls) and reports each
 * poll's latency. The same poller polls, in the same ticks, a control: an idle HTTP server
 * in a process of its own. The control's worst latency is what the machine's scheduling
 * alone costs a process that does nothing (a loaded CI machine, the poller itself late),
 * so a test can tell the server's lateness from the machine's.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface HealthReport {
  polls: number;
  /** Worst time from sending a poll to its answer (a poll still unanswered counts its age). */
  worstMs: number;
  /** The control's worst latency over the same ticks. */
  controlWorstMs: number;
  /** The server's latencies, in order, at or above `slowMs` (as passed to `stop`). */
  slow: number[];
}

const CONTROL = `
const server = require('node:http').createServer((request, response) => {
  response.setHeader('content-type', 'application/json');
  response.end('{"status":"ok"}');
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
process.on('disconnect', () => process.exit(0));
`;

const POLLER = `
const [url, controlUrl] = process.argv.slice(2);
const results = { server: [], control: [] };
const pending = new Set();
let timer;
function poll(target, into) {
  const entry = { started: performance.now(), into };
  pending.add(entry);
  fetch(target, { signal: AbortSignal.timeout(30000) })
    .then((response) => response.text())
    .catch(() => undefined)
    .finally(() => { pending.delete(entry); into.push(performance.now() - entry.started); });
}
// One request to each first: loading fetch and opening connections is the poller's cost.
Promise.all([url, controlUrl].map((target) => fetch(target).then((response) => response.text()))).then(() => {
  process.send('ready');
  timer = setInterval(() => { poll(url, results.server); poll(controlUrl, results.control); }, 50);
});
process.on('message', () => {
  clearInterval(timer);
  const now = performance.now();
  for (const entry of pending) entry.into.push(now - entry.started);
  process.send(results, () => process.exit(0));
});
`;

export interface HealthPoller {
  stop(slowMs: number): Promise<HealthReport>;
}

function writeScript(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chatgate-health-poller-')), name);
  writeFileSync(path, text);
  return path;
}

function firstMessage<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    child.once('message', (message) => resolve(message as T));
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before answering`)));
  });
}

/** Starts polling once the poller has made its first requests. */
export async function startHealthPoller(healthUrl: string): Promise<HealthPoller> {
  const control = fork(writeScript('control.cjs', CONTROL), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const controlPort = await firstMessage<number>(control, 'the control server');
  const poller = fork(writeScript('poller.cjs', POLLER), [healthUrl, `http://127.0.0.1:${controlPort}/health`], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await firstMessage<string>(poller, 'the health poller');
  return {
    async stop(slowMs) {
      const reported = firstMessage<{ server: number[]; control: number[] }>(poller, 'the health poller');
      poller.send('stop');
      const results = await reported;
      control.kill();
      return {
        polls: results.server.length,
        worstMs: Math.round(Math.max(0, ...results.server)),
        controlWorstMs: Math.round(Math.max(0, ...results.control)),
        slow: results.server.filter((latency) => latency >= slowMs).map(Math.round),
      };
    },
  };
}
