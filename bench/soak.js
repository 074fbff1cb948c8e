#!/usr/bin/env node
// Soak benchmark (`npm run bench:soak`). See bench/README.md.
//
// Sends 1,000,000 chat completions (default) through Chatgate on the mock upstream, with the
// built-in defaults (master key, per-request log line, SQLite audit log), and looks for slow
// drift: latency and memory of the first tenth of the run against the last tenth. The run is
// 10 consecutive jobs of bench/load-client.js (one per tenth, same connections), after a
// warm-up; the server's RSS is sampled from /proc every 200 ms. The server runs with
// `--inspect=127.0.0.1:0`: after the warm-up and at the end the driver forces full garbage
// collections over the inspector protocol (HeapProfiler.collectGarbage) and reads
// process.memoryUsage() (Runtime.evaluate), so the two heap figures are live memory only.
// Target (issue 13): heap after a full GC at the end within 10% of the one at the start.
//
//   node bench/soak.js [--requests N] [--connections C] [--warmup N] [--stream]
//        [--log-level info] [--no-build] [--gateway-core 0] [--load-core 1] [--out FILE] [--keep-tmp]
//
// Environment: SOAK_REQUESTS, SOAK_CONNECTIONS, SOAK_WARMUP, SOAK_STREAM=1, SOAK_LOG_LEVEL,
// BENCH_NO_BUILD=1, BENCH_GATEWAY_CORE, BENCH_LOAD_CORE, BENCH_OUT, BENCH_KEEP_TMP=1.
//
// --requests N: measured requests (default 1,000,000), split in 10 tenths.
// --warmup N: requests before the first heap figure (default 20,000, at most a tenth).
// Disk: the audit log and the request log grow by about 0.5 KB per request (about 0.5 GB for
// a million), in a temp directory removed at the end (unless --keep-tmp).
// Exit code: 0 when every request got a complete 200 answer and the heap target was met,
// 1 otherwise, 2 when the harness failed.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argFlag, opt, printHelpIfAsked } from './flags.js';
import {
  BENCH_DIR,
  HAVE_TASKSET,
  NCPU,
  PINNING,
  buildOrWarn,
  cleanUpOnExit,
  f1,
  f2,
  f3,
  gitInfo,
  int,
  log,
  machineInfo,
  pct,
  rssMB,
  runLoadClient,
  startChatgateServe,
  startMock,
  stopChild,
  table,
  tail,
} from './harness.js';
import { inspectorUrl, memoryAfterFullGc } from './inspector.js';

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);

const REQUESTS = Number(opt('requests', 'SOAK_REQUESTS', 1_000_000));
const OPTS = {
  requests: REQUESTS,
  connections: Number(opt('connections', 'SOAK_CONNECTIONS', 16)),
  warmup: Math.min(Number(opt('warmup', 'SOAK_WARMUP', 20_000)), Math.ceil(REQUESTS / 10)),
  stream: argFlag('stream', 'SOAK_STREAM'),
  logLevel: String(opt('log-level', 'SOAK_LOG_LEVEL', 'info')),
  build: !argFlag('no-build', 'BENCH_NO_BUILD'),
  gatewayCore: String(opt('gateway-core', 'BENCH_GATEWAY_CORE', '0')),
  loadCore: String(opt('load-core', 'BENCH_LOAD_CORE', '1')),
  out: opt('out', 'BENCH_OUT', ''),
  keepTmp: argFlag('keep-tmp', 'BENCH_KEEP_TMP'),
};
if (!(OPTS.requests >= 10) || !(OPTS.connections >= 1) || !(OPTS.warmup >= 1)) {
  console.error('soak: --requests must be at least 10, --connections and --warmup at least 1');
  process.exit(2);
}
const TENTHS = 10;
const HEAP_TARGET = 0.1; // |end / start - 1| at most 10%
const RSS_SAMPLE_MS = 200;

const MASTER_KEY = `bench-${randomBytes(12).toString('hex')}`;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-soak-'));
cleanUpOnExit({ dir: () => TMP, keep: OPTS.keepTmp });

const REQUEST = { model: 'bench-model', messages: [{ role: 'user', content: 'Hello' }] };
const BODY = JSON.stringify(OPTS.stream ? { ...REQUEST, stream: true, stream_options: { include_usage: true } } : REQUEST);
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` };

/** One load-client job with the server's RSS sampled while it runs. */
async function runJob(url, requests, pid, warmupRequests) {
  const samples = [];
  const timer = setInterval(() => {
    const mb = rssMB(pid);
    if (mb !== null) samples.push(mb);
  }, RSS_SAMPLE_MS);
  const result = await runLoadClient(
    { kind: 'ttfb', url, body: BODY, headers: HEADERS, stream: OPTS.stream, connections: OPTS.connections, requests, warmupRequests },
    { core: OPTS.loadCore, pids: { gateway: pid } },
  );
  clearInterval(timer);
  const last = rssMB(pid);
  if (last !== null) samples.push(last);
  const rss = samples.length ? { meanMB: samples.reduce((a, b) => a + b, 0) / samples.length, maxMB: Math.max(...samples), lastMB: samples.at(-1), samples: samples.length } : null;
  return { ...result, rss };
}

const problemsOf = (r) => {
  if (r.fatal) return [`load client failed: ${r.fatal.split('\n')[0]}`];
  const out = [];
  for (const k of ['non2xx', 'errors', 'badBody']) if (r[k]) out.push(`${r[k]} ${k}`);
  const codes = Object.keys(r.statusCodes ?? {}).filter((s) => s !== '200');
  if (codes.length) out.push(`status codes ${JSON.stringify(r.statusCodes)}`);
  if (r.errorMessages && Object.keys(r.errorMessages).length) out.push(`errors ${JSON.stringify(r.errorMessages)}`);
  return out;
};

/** Chatgate's CPU milliseconds per answered request in a tenth (gw CPU share / req/s). */
const cpuPerRequestMs = (t) => (t.cpu != null && t.rps ? (t.cpu / t.rps) * 1000 : null);

const mb = (bytes) => (bytes == null ? null : bytes / 2 ** 20);

async function main() {
  const started = new Date();
  if (!PINNING) log(`!! WARNING: ${HAVE_TASKSET ? `only ${NCPU} CPU` : 'taskset not found'}: processes are NOT pinned.`);
  buildOrWarn(OPTS.build);
  const per = Math.floor(OPTS.requests / TENTHS);
  log(`soak: ${int(per * TENTHS)} ${OPTS.stream ? 'streamed' : 'JSON'} chat completions in ${TENTHS} tenths of ${int(per)}, ${OPTS.connections} connections, after ${int(OPTS.warmup)} warm-up requests`);

  const mock = await startMock(OPTS.loadCore);
  const yaml = [
    `log_level: ${OPTS.logLevel}`,
    'models:',
    '  - name: bench-model',
    '    provider: openai-compatible',
    `    base_url: http://127.0.0.1:${mock.port}/v1`,
    '    api_key: upstream-key',
  ].join('\n');
  const server = await startChatgateServe({ yaml, dir: path.join(TMP, 'chatgate'), core: OPTS.gatewayCore, masterKey: MASTER_KEY, nodeArgs: ['--inspect=127.0.0.1:0'] });
  const url = `${server.base}/v1/chat/completions`;
  const inspector = await inspectorUrl(server.errFile);
  log(`chatgate pid ${server.pid} on ${server.base} (core ${OPTS.gatewayCore}), mock on core ${OPTS.loadCore}; inspector ${inspector.replace(/\/[\w-]+$/, '/…')}`);

  const results = { benchmark: 'soak', startedAt: started.toISOString(), options: OPTS, machine: machineInfo(), git: gitInfo(), tenths: [] };
  let failed = false;
  try {
    log(`warm-up: ${int(OPTS.warmup)} requests ...`);
    const warm = await runJob(url, OPTS.warmup, server.pid, 200);
    results.warmup = { ...warm, problems: problemsOf(warm) };
    results.heapStart = await memoryAfterFullGc(inspector);
    results.rssAfterWarmupMB = rssMB(server.pid);
    log(`  heap after a full GC: ${f1(mb(results.heapStart.heapUsed))} MB used (RSS ${f1(results.rssAfterWarmupMB)} MB)`);

    const t0 = Date.now();
    for (let i = 0; i < TENTHS; i++) {
      const r = await runJob(url, per, server.pid, 1);
      const problems = problemsOf(r);
      results.tenths.push({ i, requests: per, rps: r.rps, totalMs: r.totalMs, rss: r.rss, cpu: r.cpu?.procs?.gateway ?? null, problems });
      log(
        `  tenth ${i + 1}/${TENTHS}: ${int(r.rps)} req/s, p50 ${f2(r.totalMs?.p50)} ms, p99 ${f2(r.totalMs?.p99)} ms, RSS ${f1(r.rss?.meanMB)} MB (max ${f1(r.rss?.maxMB)})` +
          `${problems.length ? `  !! ${problems.join('; ')}` : ''}`,
      );
      if (r.fatal) throw new Error(r.fatal);
    }
    results.measuredSec = (Date.now() - t0) / 1000;
    results.heapEnd = await memoryAfterFullGc(inspector);
    results.rssEndMB = rssMB(server.pid);
  } catch (err) {
    failed = true;
    results.error = err instanceof Error ? err.message : String(err);
    log(`!! ${results.error}\n--- chatgate stderr ---\n${tail(server.errFile)}`);
  } finally {
    await stopChild(server.child);
    await stopChild(mock.child);
  }

  // Report
  const say = (s = '') => console.log(s);
  const m = results.machine;
  say(`Chatgate soak, ${results.startedAt} - git ${results.git.commit ?? '?'}${results.git.dirty ? ' (dirty)' : ''}, node ${m.node}, ${m.ncpu} x ${m.cpus}${m.pinning ? '' : ' - NOT PINNED'}`);
  say(`${int(per * TENTHS)} ${OPTS.stream ? 'streamed' : 'JSON'} chat completions, ${OPTS.connections} connections, log_level ${OPTS.logLevel}, audit log on (SQLite); ${int(OPTS.warmup)} warm-up requests first`);
  if (results.measuredSec) say(`measured part: ${f1(results.measuredSec)} s (${int((per * TENTHS) / results.measuredSec)} req/s)`);
  say('');
  say(
    table(
      ['tenth', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'gw CPU', 'CPU ms/req', 'RSS mean MB', 'RSS max MB', 'problems'],
      results.tenths.map((t) => [t.i + 1, int(t.rps), f2(t.totalMs?.p50), f2(t.totalMs?.p99), f2(t.totalMs?.max), pct(t.cpu), f3(cpuPerRequestMs(t)), f1(t.rss?.meanMB), f1(t.rss?.maxMB), t.problems.join('; ') || '0']),
    ),
  );
  say('  gw CPU: Chatgate\'s CPU time / wall time; CPU ms/req: its CPU time per answered request, which other load on');
  say('  the machine changes far less than latency or req/s (a server that slows itself down shows here).');
  const first = results.tenths[0];
  const last = results.tenths.at(-1);
  const ratio = (a, b) => (a != null && b != null && b !== 0 ? a / b : null);
  const x = (v) => (v == null ? '-' : `${v.toFixed(3)}x`);
  results.summary = {
    p99FirstMs: first?.totalMs?.p99 ?? null,
    p99LastMs: last?.totalMs?.p99 ?? null,
    p99Ratio: ratio(last?.totalMs?.p99, first?.totalMs?.p99),
    rssFirstMB: first?.rss?.meanMB ?? null,
    rssLastMB: last?.rss?.meanMB ?? null,
    rssRatio: ratio(last?.rss?.meanMB, first?.rss?.meanMB),
    cpuPerRequestFirstMs: first ? cpuPerRequestMs(first) : null,
    cpuPerRequestLastMs: last ? cpuPerRequestMs(last) : null,
    cpuPerRequestRatio: first && last ? ratio(cpuPerRequestMs(last), cpuPerRequestMs(first)) : null,
    heapStartMB: mb(results.heapStart?.heapUsed),
    heapEndMB: mb(results.heapEnd?.heapUsed),
    heapRatio: ratio(results.heapEnd?.heapUsed, results.heapStart?.heapUsed),
  };
  const s = results.summary;
  say('');
  say('== First tenth against last tenth ==');
  say(`  p99 latency              ${f2(s.p99FirstMs)} ms -> ${f2(s.p99LastMs)} ms   (${x(s.p99Ratio)})`);
  say(`  CPU per request          ${f3(s.cpuPerRequestFirstMs)} ms -> ${f3(s.cpuPerRequestLastMs)} ms   (${x(s.cpuPerRequestRatio)})`);
  say(`  RSS (mean of the tenth)  ${f1(s.rssFirstMB)} MB -> ${f1(s.rssLastMB)} MB   (${x(s.rssRatio)})`);
  say(`  heap used after full GC  ${f1(s.heapStartMB)} MB -> ${f1(s.heapEndMB)} MB   (${x(s.heapRatio)})  [start: after the warm-up; end: after the last tenth]`);
  if (results.heapStart && results.heapEnd) {
    say(`  (after full GC: heapTotal ${f1(mb(results.heapStart.heapTotal))} -> ${f1(mb(results.heapEnd.heapTotal))} MB, external ${f1(mb(results.heapStart.external))} -> ${f1(mb(results.heapEnd.external))} MB, arrayBuffers ${f1(mb(results.heapStart.arrayBuffers))} -> ${f1(mb(results.heapEnd.arrayBuffers))} MB)`);
  }
  // What the server printed on stderr besides the inspector's own lines (warnings, errors).
  let stderrLines = [];
  try {
    stderrLines = fs.readFileSync(server.errFile, 'utf8').split('\n').filter((l) => l.trim() && !/^(Debugger (listening on|attached|ending on)|For help, see|Waiting for the debugger)/.test(l));
  } catch {}
  results.serverStderr = stderrLines.slice(0, 50);
  say(`  server stderr: ${stderrLines.length === 0 ? 'nothing' : `${stderrLines.length} lines, e.g.\n    ${stderrLines.slice(0, 5).join('\n    ')}`}`);
  const heapPass = s.heapRatio != null && Math.abs(s.heapRatio - 1) <= HEAP_TARGET;
  const problems = [...(results.warmup?.problems ?? []).map((p) => `warm-up: ${p}`), ...results.tenths.flatMap((t) => t.problems.map((p) => `tenth ${t.i + 1}: ${p}`))];
  say('');
  say(`  [${s.heapRatio == null ? 'n/a ' : heapPass ? 'PASS' : 'FAIL'}] heap after a full GC flat within ${pct(HEAP_TARGET)}: ${x(s.heapRatio)}`);
  say(`  [${problems.length || failed ? 'FAIL' : 'PASS'}] every request answered 200 with a complete body${problems.length ? `: ${problems.slice(0, 5).join('; ')}` : ''}`);

  const outFile = OPTS.out || path.join(BENCH_DIR, 'results', `soak-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  say(`results: ${path.relative(process.cwd(), outFile)}`);
  process.exitCode = failed || problems.length || !heapPass ? 1 : 0;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(2);
});
