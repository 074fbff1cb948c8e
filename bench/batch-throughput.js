#!/usr/bin/env node
// Batch API throughput benchmark (`npm run bench:batch`). See bench/README.md.
//
// In one run, against the mock upstream (bench/mock-upstream.js, answering every request after
// --upstream-delay ms), N chat requests (distinct user messages) through Chatgate two ways, at
// the same concurrency C:
//
//   batch  one batch of N lines: upload the JSONL (files.create, purpose batch), batches.create,
//          poll batches.retrieve every --poll-ms until it is final, download the output file and
//          check it (every custom_id exactly once, status_code 200, a chat.completion body).
//          Chatgate runs the lines with batches.concurrency_per_model = batches.max_concurrency = C.
//   live   the same N request bodies POSTed to /v1/chat/completions by C workers over C
//          keep-alive connections (undici Pool), each answer checked (200, chat.completion).
//
// Wall time (batch: create -> completed seen by the poll; live: first request -> last answer),
// requests/s, and the Chatgate process's memory: its RSS (/proc/<pid>/status VmRSS) sampled
// every --sample-ms over the phase (batch: upload to download), the peak, the baseline just
// before the phase and the growth (peak - baseline). Also Chatgate's CPU per request and the
// time the batch spent validating, running and finalizing (as seen by the poll).
//
// Every phase gets a fresh Chatgate (and a fresh data dir, so the SQLite file never carries a
// previous phase's rows), warmed up the same way before each phase (--warmup live requests and
// a --warmup-batch-line batch), so that both phases start from the same state. Phases
// alternate: round 1 batch then live, round 2 live then batch, and so on.
//
// Chatgate is pinned to --gateway-core (0); the mock and this driver (the live client, the
// poller) to --load-core (1), when taskset is available. The machine's load average is printed
// at the start and with every phase; other processes' CPU on the two cores during a phase is
// reported as `foreign` (cores' busy time minus the benchmark's processes).
//
//   node bench/batch-throughput.js [--requests 10000] [--concurrency 32] [--rounds 2]
//        [--upstream-delay 20] [--warmup 500] [--warmup-batch 200] [--poll-ms 150]
//        [--sample-ms 100] [--no-build] [--gateway-core 0] [--load-core 1]
//        [--gateway-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"] [--out FILE] [--keep-tmp]
//
// Every flag also reads an environment variable: BENCH_REQUESTS, BENCH_CONCURRENCY,
// BENCH_ROUNDS, BENCH_UPSTREAM_DELAY, BENCH_WARMUP, BENCH_WARMUP_BATCH, BENCH_POLL_MS,
// BENCH_SAMPLE_MS, BENCH_NO_BUILD=1, BENCH_GATEWAY_CORE, BENCH_LOAD_CORE,
// BENCH_GATEWAY_NODE_ARGS, BENCH_OUT, BENCH_KEEP_TMP=1.
//
// The mock has no latency option for JSON answers (--chunk-delay only spaces SSE events, and a
// batch cannot stream), so it is started with a small `--import` preload that defers its
// request handler by --upstream-delay ms (0: no preload). Results go to
// bench/results/batch-throughput-<timestamp>.json (gitignored).
// Exit status: 0 every request succeeded and every output checked out, 1 a request failed or
// an output was wrong, 2 the harness failed.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI, { toFile } from 'openai';
import { Pool } from 'undici';
import { argFlag, flag, printHelpIfAsked } from './flags.js';
import {
  buildOrWarn,
  BENCH_DIR,
  PINNING,
  ROOT,
  cleanUpOnExit,
  cpuDelta,
  cpuSnapshot,
  f1,
  f2,
  gitInfo,
  int,
  log,
  machineInfo,
  rssMB,
  sleep,
  startChatgateServe,
  startReadyLine,
  stopChild,
  summarize,
  table,
} from './harness.js';

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);
const boolFlag = argFlag;

const OPTS = {
  requests: Number(flag('requests', 'BENCH_REQUESTS', 10_000)),
  concurrency: Number(flag('concurrency', 'BENCH_CONCURRENCY', 32)),
  rounds: Number(flag('rounds', 'BENCH_ROUNDS', 2)),
  upstreamDelayMs: Number(flag('upstream-delay', 'BENCH_UPSTREAM_DELAY', 20)),
  warmup: Number(flag('warmup', 'BENCH_WARMUP', 500)),
  warmupBatch: Number(flag('warmup-batch', 'BENCH_WARMUP_BATCH', 200)),
  pollMs: Number(flag('poll-ms', 'BENCH_POLL_MS', 150)),
  sampleMs: Number(flag('sample-ms', 'BENCH_SAMPLE_MS', 100)),
  build: !boolFlag('no-build', 'BENCH_NO_BUILD'),
  gatewayCore: String(flag('gateway-core', 'BENCH_GATEWAY_CORE', '0')),
  loadCore: String(flag('load-core', 'BENCH_LOAD_CORE', '1')),
  gatewayNodeArgs: String(flag('gateway-node-args', 'BENCH_GATEWAY_NODE_ARGS', '')).split(' ').filter(Boolean),
  out: flag('out', 'BENCH_OUT', ''),
  keepTmp: boolFlag('keep-tmp', 'BENCH_KEEP_TMP'),
};
for (const k of ['requests', 'concurrency', 'rounds', 'pollMs', 'sampleMs']) {
  if (!Number.isInteger(OPTS[k]) || OPTS[k] < 1) die(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a positive integer`);
}
for (const k of ['upstreamDelayMs', 'warmup', 'warmupBatch']) if (!(OPTS[k] >= 0)) die(`${k} must be >= 0`);

/** Above this 1-minute load average (on 2 vCPUs) the figures are probably disturbed. */
const HIGH_LOAD = 2.5;
const MODEL = 'bench-model';
const ENDPOINT = '/v1/chat/completions';
const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const MASTER_KEY = `bench-${randomBytes(12).toString('hex')}`;
var TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-batch-bench-')); // var: read by the exit handler

// The children of the moment (for an interrupt: Chatgate's graceful stop can take seconds).
const live = new Set();
const watchChild = (child) => (live.add(child), child.once('exit', () => live.delete(child)), child);
cleanUpOnExit({
  dir: () => TMP,
  keep: OPTS.keepTmp,
  // After SIGTERM (sent by the harness), give them 3 s, then SIGKILL, before the temp dir goes.
  onSignal: async () => {
    const deadline = Date.now() + 3000;
    while (live.size > 0 && Date.now() < deadline) await sleep(50);
    for (const child of live) child.kill('SIGKILL');
  },
});

function die(msg) {
  console.error(`batch-throughput: ${msg}`);
  process.exit(2);
}

const loadavg = () => os.loadavg().map((v) => v.toFixed(2)).join(' ');

function dirBytes(dir) {
  let sum = 0;
  try {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      sum += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
    }
  } catch {}
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The pieces

/** The mock upstream pinned to the load core; its handler deferred by `delayMs` (a preload). */
function startDelayedMock(delayMs) {
  const preload =
    "import http from 'node:http';" +
    `const delay = ${Number(delayMs)};` +
    'const createServer = http.createServer;' +
    'http.createServer = (...args) => {' +
    "  const i = args.findIndex((a) => typeof a === 'function');" +
    '  if (i >= 0) { const handler = args[i]; args[i] = (req, res) => setTimeout(handler, delay, req, res); }' +
    '  return createServer.apply(http, args);' +
    '};';
  const nodeArgs = delayMs > 0 ? ['--import', `data:text/javascript,${encodeURIComponent(preload)}`] : [];
  return startReadyLine('mock upstream', OPTS.loadCore, [...nodeArgs, path.join(BENCH_DIR, 'mock-upstream.js'), '--port', '0'], 'MOCK');
}

function chatgateYaml(mockPort) {
  return [
    'log_level: warn',
    'batches:',
    `  concurrency_per_model: ${OPTS.concurrency}`,
    `  max_concurrency: ${OPTS.concurrency}`,
    'models:',
    `  - name: ${MODEL}`,
    '    provider: openai-compatible',
    `    base_url: http://127.0.0.1:${mockPort}/v1`,
    '    api_key: upstream-key',
    `    model: ${MODEL}`,
    '    cache: { enabled: false }',
  ].join('\n');
}

/** The request bodies (JSON text) of a phase: distinct user messages, `tag` keeps phases apart. */
function requestBodies(n, tag) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: `Request ${tag}-${i}: summarize the benchmark's ${i % 97}th finding in one sentence.` }],
      max_tokens: 16,
    });
  }
  return out;
}

const customId = (tag, i) => `${tag}-${i}`;

function batchJsonl(bodies, tag) {
  return bodies.map((body, i) => `{"custom_id":${JSON.stringify(customId(tag, i))},"method":"POST","url":"${ENDPOINT}","body":${body}}`).join('\n') + '\n';
}

/** Samples the RSS of `pid` every `everyMs` until stop(): { peak, samples, stop }. */
function rssSampler(pid, everyMs) {
  const t0 = performance.now();
  const samples = [];
  const take = () => {
    const mb = rssMB(pid);
    if (mb != null) samples.push([Math.round(performance.now() - t0), Math.round(mb * 10) / 10]);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      return { peakMB: Math.max(...samples.map((s) => s[1])), endMB: samples.at(-1)?.[1] ?? null, samples };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Live: C workers over a Pool of C connections, each sending the next body as soon as its
// previous answer is in.

async function runLive(server, bodies, concurrency) {
  const pool = new Pool(server.base, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const headers = { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' };
  const latencies = new Float64Array(bodies.length);
  const failures = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      const t = performance.now();
      try {
        const r = await pool.request({ path: ENDPOINT, method: 'POST', headers, body: bodies[i] });
        const text = await r.body.text();
        latencies[i] = performance.now() - t;
        if (r.statusCode !== 200 || !text.includes('"chat.completion"')) failures.push(`#${i}: ${r.statusCode} ${text.slice(0, 200)}`);
      } catch (error) {
        latencies[i] = performance.now() - t;
        failures.push(`#${i}: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallSec = (performance.now() - t0) / 1000;
  await pool.close();
  return { wallSec, latency: summarize(latencies), failures };
}

// ---------------------------------------------------------------------------------------------
// Batch: upload, create, poll, download and check.

function openaiClient(server) {
  return new OpenAI({ apiKey: MASTER_KEY, baseURL: `${server.base}/v1`, maxRetries: 0, timeout: 600_000 });
}

async function runBatch(server, bodies, tag, { onCreated } = {}) {
  const client = openaiClient(server);
  const failures = [];
  const jsonl = batchJsonl(bodies, tag);
  const tUpload = performance.now();
  const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), `${tag}.jsonl`), purpose: 'batch' });
  const uploadSec = (performance.now() - tUpload) / 1000;

  onCreated?.();
  const t0 = performance.now();
  let batch = await client.batches.create({ input_file_id: file.id, endpoint: ENDPOINT, completion_window: '24h' });
  const createMs = performance.now() - t0;
  const seen = [{ status: batch.status, ms: createMs, counts: batch.request_counts ?? null }];
  while (!FINAL.has(batch.status)) {
    await sleep(OPTS.pollMs);
    batch = await client.batches.retrieve(batch.id);
    const ms = performance.now() - t0;
    if (batch.status !== seen.at(-1).status) seen.push({ status: batch.status, ms, counts: batch.request_counts ?? null });
  }
  const tDone = performance.now();
  const wallSec = (tDone - t0) / 1000;
  const first = (status) => seen.find((s) => s.status === status)?.ms ?? null;
  const tInProgress = first('in_progress');
  const tAfterRun = first('finalizing') ?? first('completed');
  const phases = {
    createMs,
    validatingMs: tInProgress,
    runningMs: tInProgress != null && tAfterRun != null ? tAfterRun - tInProgress : null,
    finalizingMs: tAfterRun != null ? wallSec * 1000 - tAfterRun : null,
    finalizingSeen: first('finalizing') != null,
  };

  // Download and check.
  const tDownload = performance.now();
  let outputLines = 0;
  if (batch.status !== 'completed') failures.push(`batch ${batch.id} ended ${batch.status}: ${JSON.stringify(batch.errors ?? null).slice(0, 500)}`);
  const rc = batch.request_counts;
  if (!rc || rc.total !== bodies.length || rc.completed !== bodies.length || rc.failed !== 0) failures.push(`request_counts ${JSON.stringify(rc)}, expected ${bodies.length} completed`);
  if (batch.error_file_id) {
    const errText = await (await client.files.content(batch.error_file_id)).text();
    failures.push(`error file ${batch.error_file_id}: ${errText.split('\n').length - 1} lines, first: ${errText.slice(0, 300)}`);
  }
  if (batch.output_file_id) {
    const text = await (await client.files.content(batch.output_file_id)).text();
    const count = new Map();
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      outputLines++;
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        bad++;
        continue;
      }
      count.set(o.custom_id, (count.get(o.custom_id) ?? 0) + 1);
      if (o.response?.status_code !== 200 || o.response?.body?.object !== 'chat.completion' || o.error != null) {
        if (bad++ < 3) failures.push(`output line for ${o.custom_id}: ${line.slice(0, 300)}`);
      }
    }
    let missing = 0;
    let dup = 0;
    for (let i = 0; i < bodies.length; i++) {
      const c = count.get(customId(tag, i)) ?? 0;
      if (c === 0) missing++;
      else if (c > 1) dup++;
    }
    const extra = [...count.keys()].filter((k) => !k?.startsWith(`${tag}-`)).length;
    if (bad || missing || dup || extra || outputLines !== bodies.length) {
      failures.push(`output file: ${outputLines} lines, ${bad} not 200/chat.completion, ${missing} custom_ids missing, ${dup} more than once, ${extra} unknown`);
    }
  } else if (batch.status === 'completed') {
    failures.push('completed batch without an output_file_id');
  }
  const downloadSec = (performance.now() - tDownload) / 1000;
  return { batchId: batch.id, status: batch.status, wallSec, uploadSec, downloadSec, jsonlBytes: Buffer.byteLength(jsonl), outputLines, phases, seen, failures };
}

// ---------------------------------------------------------------------------------------------
// One phase: a fresh Chatgate, warm-up, then the measured phase with RSS and CPU sampling.

async function runPhase(kind, index, mock) {
  const dir = path.join(TMP, `phase-${index}-${kind}`);
  const server = await startChatgateServe({ yaml: chatgateYaml(mock.port), dir, core: OPTS.gatewayCore, masterKey: MASTER_KEY, nodeArgs: OPTS.gatewayNodeArgs });
  watchChild(server.child);
  try {
    // The same warm-up before either kind of phase: both code paths, then a moment to settle.
    if (OPTS.warmup > 0) {
      const w = await runLive(server, requestBodies(OPTS.warmup, `warm${index}`), OPTS.concurrency);
      if (w.failures.length) throw new Error(`warm-up request failed: ${w.failures[0]}`);
    }
    if (OPTS.warmupBatch > 0) {
      const w = await runBatch(server, requestBodies(OPTS.warmupBatch, `warmb${index}`), `warmb${index}`);
      if (w.failures.length) throw new Error(`warm-up batch failed: ${w.failures[0]}`);
    }
    await sleep(1000);

    const tag = `p${index}`;
    const bodies = requestBodies(OPTS.requests, tag);
    const loadBefore = os.loadavg();
    const baselineMB = rssMB(server.pid);
    const pids = { gw: server.pid, mock: mock.child.pid, driver: process.pid };
    const sampler = rssSampler(server.pid, OPTS.sampleMs);
    let cpu0 = cpuSnapshot(pids);
    let result;
    if (kind === 'live') {
      result = await runLive(server, bodies, OPTS.concurrency);
    } else {
      // CPU over create -> completed only (the upload is timed apart).
      result = await runBatch(server, bodies, tag, { onCreated: () => (cpu0 = cpuSnapshot(pids)) });
    }
    const cpu1 = cpuSnapshot(pids);
    const mem = sampler.stop();
    const cpu = cpuDelta(cpu0, cpu1);
    // For live, the CPU window includes the check of the last answers (microseconds); for batch
    // it ends after the download, which is short next to the run. Per request: CPU s / N.
    const gwCpuSec = cpu.procs.gw == null ? null : cpu.procs.gw * cpu.wallSec;
    const coresBusy = Object.values(cpu.cores).reduce((a, c) => a + c.busy, 0);
    const ours = (cpu.procs.gw ?? 0) + (cpu.procs.mock ?? 0) + (cpu.procs.driver ?? 0);
    const dataBytes = dirBytes(server.dataDir);
    return {
      kind,
      index,
      requests: OPTS.requests,
      ...result,
      reqPerSec: OPTS.requests / result.wallSec,
      memory: { baselineMB, peakMB: mem.peakMB, endMB: mem.endMB, growthMB: mem.peakMB - baselineMB, samples: mem.samples },
      cpu: {
        windowSec: cpu.wallSec,
        gwCores: cpu.procs.gw,
        gwMsPerRequest: gwCpuSec == null ? null : (gwCpuSec * 1000) / OPTS.requests,
        mockCores: cpu.procs.mock,
        driverCores: cpu.procs.driver,
        foreignCores: Math.max(0, coresBusy - ours),
        cores: cpu.cores,
      },
      dataDirBytes: dataBytes,
      loadavgBefore: loadBefore,
      loadavgAfter: os.loadavg(),
    };
  } finally {
    await stopChild(server.child);
    if (!OPTS.keepTmp) fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (xs) => {
  const s = xs.filter((x) => x != null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const x2 = (v) => (v == null ? '-' : `${v.toFixed(2)}x`);

function report(phases) {
  const say = (s = '') => console.log(s);
  say('');
  say(`== Batch vs live: ${int(OPTS.requests)} chat requests, concurrency ${OPTS.concurrency}, upstream delay ${OPTS.upstreamDelayMs} ms ==`);
  const ceiling = OPTS.upstreamDelayMs > 0 ? (OPTS.concurrency * 1000) / OPTS.upstreamDelayMs : null;
  if (ceiling) say(`(ceiling set by the upstream delay alone: ${OPTS.concurrency} / ${OPTS.upstreamDelayMs} ms = ${int(ceiling)} req/s)`);
  say('');
  const rows = phases.map((p) => [
    p.index + 1,
    p.kind,
    f2(p.wallSec),
    int(p.reqPerSec),
    f1(p.memory.peakMB),
    f1(p.memory.baselineMB),
    f1(p.memory.growthMB),
    f2(p.cpu.gwMsPerRequest),
    f2(p.cpu.gwCores),
    f2(p.cpu.foreignCores),
    p.loadavgBefore[0].toFixed(2),
  ]);
  say(table(['#', 'phase', 'wall s', 'req/s', 'peak RSS MB', 'base MB', 'RSS growth MB', 'gw CPU ms/req', 'gw cores', 'foreign', 'load1'], rows, ['r', 'l']));
  say('   wall: batch = create -> completed (seen by the poll), live = first request -> last answer;');
  say('   RSS growth = peak - baseline (RSS just before the phase, after the warm-up); foreign = cores used by other processes.');

  const batches = phases.filter((p) => p.kind === 'batch');
  const lives = phases.filter((p) => p.kind === 'live');
  if (batches.length) {
    say('');
    say('Batch phases, where the time went (s; validating/running/finalizing as seen by a poll every ' + OPTS.pollMs + ' ms):');
    say(
      table(
        ['#', 'upload', 'create', 'validating', 'running', 'finalizing', 'download+check', 'JSONL MB', 'data dir MB'],
        batches.map((p) => [
          p.index + 1,
          f2(p.uploadSec),
          f2(p.phases.createMs / 1000),
          f2(p.phases.validatingMs == null ? null : p.phases.validatingMs / 1000),
          f2(p.phases.runningMs == null ? null : p.phases.runningMs / 1000),
          `${f2(p.phases.finalizingMs == null ? null : p.phases.finalizingMs / 1000)}${p.phases.finalizingSeen ? '' : '*'}`,
          f2(p.downloadSec),
          f1(p.jsonlBytes / 2 ** 20),
          f1(p.dataDirBytes / 2 ** 20),
        ]),
      ),
    );
    if (batches.some((p) => !p.phases.finalizingSeen)) say('   * the poll never saw `finalizing`: that column is the time from the last `in_progress` poll to `completed`.');
    say('   running-phase rate (requests / running s): ' + batches.map((p) => (p.phases.runningMs ? int((OPTS.requests * 1000) / p.phases.runningMs) : '-')).join(', ') + ' req/s');
  }
  if (lives.length) {
    say('');
    say('Live phases, client latency (ms): ' + lives.map((p) => `#${p.index + 1} p50 ${f2(p.latency.p50)} p99 ${f2(p.latency.p99)} max ${f1(p.latency.max)}`).join('; '));
  }

  const summary = {
    batch: { reqPerSec: median(batches.map((p) => p.reqPerSec)), peakMB: median(batches.map((p) => p.memory.peakMB)), growthMB: median(batches.map((p) => p.memory.growthMB)), gwMsPerRequest: median(batches.map((p) => p.cpu.gwMsPerRequest)) },
    live: { reqPerSec: median(lives.map((p) => p.reqPerSec)), peakMB: median(lives.map((p) => p.memory.peakMB)), growthMB: median(lives.map((p) => p.memory.growthMB)), gwMsPerRequest: median(lives.map((p) => p.cpu.gwMsPerRequest)) },
  };
  summary.ratios = {
    reqPerSec: ratio(summary.batch.reqPerSec, summary.live.reqPerSec),
    peakMB: ratio(summary.batch.peakMB, summary.live.peakMB),
    growthMB: ratio(summary.batch.growthMB, summary.live.growthMB),
    gwMsPerRequest: ratio(summary.batch.gwMsPerRequest, summary.live.gwMsPerRequest),
  };
  say('');
  say(`== Ratios batch / live (medians over ${batches.length} batch and ${lives.length} live phases) ==`);
  say(`  req/s:          ${x2(summary.ratios.reqPerSec)}   (batch ${int(summary.batch.reqPerSec)}, live ${int(summary.live.reqPerSec)})`);
  say(`  peak RSS:       ${x2(summary.ratios.peakMB)}   (batch ${f1(summary.batch.peakMB)} MB, live ${f1(summary.live.peakMB)} MB)`);
  say(`  RSS growth:     ${x2(summary.ratios.growthMB)}   (batch +${f1(summary.batch.growthMB)} MB, live +${f1(summary.live.growthMB)} MB)`);
  say(`  gw CPU per req: ${x2(summary.ratios.gwMsPerRequest)}   (batch ${f2(summary.batch.gwMsPerRequest)} ms, live ${f2(summary.live.gwMsPerRequest)} ms)`);
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const startLoad = os.loadavg();
  log(`load average at start: ${loadavg()} (${os.availableParallelism?.() ?? os.cpus().length} CPUs)`);
  if (startLoad[0] > HIGH_LOAD) log(`!! WARNING: load average ${startLoad[0].toFixed(2)} > ${HIGH_LOAD}: other processes are busy, the figures will be disturbed`);
  if (!PINNING) log('!! WARNING: processes are NOT pinned (no taskset or < 2 CPUs); figures are not comparable.');
  else spawnSync('taskset', ['-cp', OPTS.loadCore, String(process.pid)], { stdio: 'ignore' });

  buildOrWarn(OPTS.build);

  const started = new Date();
  const mock = await startDelayedMock(OPTS.upstreamDelayMs);
  watchChild(mock.child);
  log(`mock upstream on port ${mock.port}, answering after ${OPTS.upstreamDelayMs} ms; concurrency ${OPTS.concurrency}, ${int(OPTS.requests)} requests, ${OPTS.rounds} round(s)`);
  const phases = [];
  let failures = 0;
  try {
    let index = 0;
    for (let round = 0; round < OPTS.rounds; round++) {
      for (const kind of round % 2 === 0 ? ['batch', 'live'] : ['live', 'batch']) {
        log(`round ${round + 1}/${OPTS.rounds}: ${kind} (load ${loadavg()}) ...`);
        const p = await runPhase(kind, index++, mock);
        phases.push(p);
        failures += p.failures.length;
        for (const f of p.failures.slice(0, 5)) log(`  !! ${f}`);
        log(
          `  ${kind}: ${f2(p.wallSec)} s, ${int(p.reqPerSec)} req/s, RSS ${f1(p.memory.baselineMB)} -> peak ${f1(p.memory.peakMB)} MB, ` +
            `gw ${f2(p.cpu.gwMsPerRequest)} ms CPU/req` +
            (kind === 'batch' ? `; upload ${f2(p.uploadSec)} s, download+check ${f2(p.downloadSec)} s` : ''),
        );
      }
    }
  } finally {
    await stopChild(mock.child);
  }

  const summary = report(phases);
  const endLoad = os.loadavg();
  console.log('');
  console.log(`load average: ${startLoad.map((v) => v.toFixed(2)).join(' ')} at start, ${endLoad.map((v) => v.toFixed(2)).join(' ')} at the end`);
  if (Math.max(startLoad[0], endLoad[0]) > HIGH_LOAD) console.log(`!! load average above ${HIGH_LOAD}: other processes shared the machine; treat the figures as disturbed`);
  const maxForeign = Math.max(...phases.map((p) => p.cpu.foreignCores ?? 0));
  if (maxForeign > 0.2) console.log(`!! up to ${f2(maxForeign)} cores of foreign CPU during a phase (see the 'foreign' column)`);

  const out = OPTS.out || path.join(ROOT, 'bench', 'results', `batch-throughput-${started.toISOString().replaceAll(':', '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ benchmark: 'batch-throughput', startedAt: started.toISOString(), options: OPTS, machine: machineInfo(), git: gitInfo(), loadavgStart: startLoad, loadavgEnd: endLoad, phases, summary, failures }, null, 2));
  console.log(`results: ${path.relative(process.cwd(), out)}`);
  if (failures > 0) {
    console.log(`!! ${failures} failure(s), listed above`);
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(`batch-throughput: ${error?.stack ?? error}`);
    process.exit(2);
  },
);
