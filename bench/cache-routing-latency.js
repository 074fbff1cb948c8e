#!/usr/bin/env node
// Cache and routing latency benchmark (`npm run bench:cache`). See bench/README.md.
//
// In one run, against one mock upstream (bench/mock-upstream.js) on loopback: the latency of a
// response-cache hit against a fresh upstream call through Chatgate, and the latency the
// routing layer (`provider: router`) adds, for JSON and streamed chat completions, one
// connection, sequential requests (undici, keep-alive). Cases:
//
//   direct         the mock upstream called directly (the floor)
//   fresh          Chatgate model `fresh`: openai-compatible, cache off
//   routed         model `routed`: provider router, strategy fallback, one openai-compatible target
//   routed2        model `routed2`: the same with two targets, the first healthy (it answers)
//   cached         model `cached`: openai-compatible, response cache on, memory backend
//   cached-sqlite  the same model in a second Chatgate with `cache.backend: sqlite`
//   cached-redis   the same in a third Chatgate with `cache.backend: redis` (--redis-url)
//
// Every request has temperature 0 (cacheable; the same body for every case but the model).
// Cases are interleaved: in each round, for each mode, every case runs --requests sequential
// requests (after a short un-recorded warm-up), in an order that flips every round. Figures:
// client latency to the last byte (and to the first byte) p50/p99 over all rounds, and the
// server time of the same requests: the audit log's duration_ms (GET /admin/logs, each batch
// tagged by its `user` field, which is not part of the cache key). Every measured answer of
// `cached*` must carry `x-chatgate-cache: hit`, every `fresh`/`routed*` answer no such header,
// every `routed*` answer `x-chatgate-target: primary`.
//
// Chatgate (all instances) is pinned to core 0, the mock and the load client (bench/load-client.js)
// to core 1. Before anything starts the run waits until no other benchmark is running
// (--wait-bench S, pgrep -f --wait-bench-pattern, polled every 15 s).
//
//   node bench/cache-routing-latency.js [--quick] [--rounds 5] [--requests 1000]
//        [--warmup-requests 200] [--modes json,stream]
//        [--cases direct,fresh,routed,routed2,cached,cached-sqlite,cached-redis]
//        [--redis-url redis://127.0.0.1:6379] [--hit-threshold-ms 0.5] [--no-build]
//        [--gateway-core 0] [--load-core 1] [--wait-idle S] [--wait-idle-total S]
//        [--wait-bench S] [--wait-bench-pattern RE] [--out FILE] [--keep-tmp]
//
// Every flag also reads an environment variable: BENCH_ROUNDS, BENCH_REQUESTS,
// BENCH_WARMUP_REQUESTS, BENCH_MODES, BENCH_CASES, BENCH_REDIS_URL, BENCH_HIT_THRESHOLD_MS,
// BENCH_NO_BUILD=1, BENCH_QUICK=1, BENCH_GATEWAY_CORE, BENCH_LOAD_CORE, BENCH_WAIT_IDLE,
// BENCH_WAIT_IDLE_TOTAL, BENCH_WAIT_BENCH, BENCH_WAIT_BENCH_PATTERN, BENCH_OUT, BENCH_KEEP_TMP=1.
//
// --quick: 2 rounds x 300 requests (about a minute).
// Target (from the issue: "cache hits return in well under a millisecond of server time"):
// PASS when a hit's server time p50 is under --hit-threshold-ms (0.5 ms), per backend and mode.
// Exit status: 0 every request answered 200 with a complete body and the expected headers,
// 1 a request failed or a case could not be measured, 2 the harness failed. A FAIL verdict
// does not change the exit status (the figures are the output).

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argFlag, flag, printHelpIfAsked } from './flags.js';
import {
  buildOrWarn,
  BENCH_DIR,
  PINNING,
  ROOT,
  cpuDelta,
  cpuSnapshot,
  f3,
  gitInfo,
  killAll,
  log,
  machineInfo,
  pct,
  runLoadClient,
  signed,
  sleep,
  startChatgateServe,
  startMock,
  stopChild,
  summarize,
  table,
  cleanUpOnExit,
} from './harness.js';

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);

const boolFlag = argFlag;
const list = (v) => String(v).split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');

const ALL_CASES = ['direct', 'fresh', 'routed', 'routed2', 'cached', 'cached-sqlite', 'cached-redis'];
const QUICK = boolFlag('quick', 'BENCH_QUICK');
const OPTS = {
  rounds: Number(flag('rounds', 'BENCH_ROUNDS', QUICK ? 2 : 5)),
  requests: Number(flag('requests', 'BENCH_REQUESTS', QUICK ? 300 : 1000)),
  warmupRequests: Number(flag('warmup-requests', 'BENCH_WARMUP_REQUESTS', QUICK ? 100 : 200)),
  modes: list(flag('modes', 'BENCH_MODES', 'json,stream')),
  cases: list(flag('cases', 'BENCH_CASES', ALL_CASES.join(','))),
  redisUrl: flag('redis-url', 'BENCH_REDIS_URL', 'redis://127.0.0.1:6379'),
  hitThresholdMs: Number(flag('hit-threshold-ms', 'BENCH_HIT_THRESHOLD_MS', 0.5)),
  build: !boolFlag('no-build', 'BENCH_NO_BUILD'),
  gatewayCore: String(flag('gateway-core', 'BENCH_GATEWAY_CORE', '0')),
  loadCore: String(flag('load-core', 'BENCH_LOAD_CORE', '1')),
  waitIdleSec: Number(flag('wait-idle', 'BENCH_WAIT_IDLE', 3)),
  waitIdleTotalSec: Number(flag('wait-idle-total', 'BENCH_WAIT_IDLE_TOTAL', 60)),
  waitBenchSec: Number(flag('wait-bench', 'BENCH_WAIT_BENCH', 1500)),
  waitBenchPattern: flag('wait-bench-pattern', 'BENCH_WAIT_BENCH_PATTERN', 'local-model-throughput|governance-overhead|gateway-overhead'),
  out: flag('out', 'BENCH_OUT', ''),
  keepTmp: boolFlag('keep-tmp', 'BENCH_KEEP_TMP'),
  quick: QUICK,
};
for (const c of OPTS.cases) if (!ALL_CASES.includes(c)) die(`unknown case "${c}" (${ALL_CASES.join(', ')})`);
for (const m of OPTS.modes) if (!['json', 'stream'].includes(m)) die(`unknown mode "${m}" (json, stream)`);
if (!(OPTS.requests > 0) || !(OPTS.rounds > 0)) die('--requests and --rounds must be positive');

// A measurement is flagged when processes outside the benchmark used more than this share of
// a benchmark core during it.
const FOREIGN_LIMIT = 0.1;

const CASES = {
  direct: { label: 'upstream direct', gateway: null, model: 'bench-model', expect: null },
  fresh: { label: 'fresh (cache off)', gateway: 'main', model: 'fresh', expect: { 'x-chatgate-cache': null } },
  routed: { label: 'routed, 1 target', gateway: 'main', model: 'routed', expect: { 'x-chatgate-cache': null, 'x-chatgate-target': 'primary' } },
  routed2: { label: 'routed, 2 targets', gateway: 'main', model: 'routed2', expect: { 'x-chatgate-cache': null, 'x-chatgate-target': 'primary' } },
  cached: { label: 'cache hit, memory', gateway: 'main', model: 'cached', expect: { 'x-chatgate-cache': 'hit' } },
  'cached-sqlite': { label: 'cache hit, sqlite', gateway: 'sqlite', model: 'cached', expect: { 'x-chatgate-cache': 'hit' } },
  'cached-redis': { label: 'cache hit, redis', gateway: 'redis', model: 'cached', expect: { 'x-chatgate-cache': 'hit' } },
};

function die(msg) {
  console.error(`cache-routing-latency: ${msg}`);
  process.exit(2);
}

const MASTER_KEY = `bench-${randomBytes(12).toString('hex')}`;
const RUN_ID = randomBytes(4).toString('hex');
var TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-cache-bench-')); // var: read by the exit handler

cleanUpOnExit({ dir: () => TMP, keep: OPTS.keepTmp });

// ---------------------------------------------------------------------------------------------
// Before the run: other benchmarks, the build, Redis

/** Waits (polling every 15 s, at most OPTS.waitBenchSec) until no process matches the pattern. */
async function waitForOtherBenchmarks() {
  const others = () => {
    const r = spawnSync('pgrep', ['-af', OPTS.waitBenchPattern], { encoding: 'utf8' });
    return (r.stdout || '')
      .split('\n')
      .filter(Boolean)
      .filter((l) => Number(l.split(' ', 1)[0]) !== process.pid && Number(l.split(' ', 1)[0]) !== process.ppid);
  };
  const t0 = Date.now();
  let running = others();
  while (running.length && Date.now() - t0 < OPTS.waitBenchSec * 1000) {
    log(`waiting for other benchmarks to finish (${Math.round((Date.now() - t0) / 1000)} s so far): ${running.map((l) => l.slice(0, 90)).join(' | ')}`);
    await sleep(15_000);
    running = others();
  }
  return { waitedSec: (Date.now() - t0) / 1000, stillRunning: running };
}

function redisReachable(url) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(String(d).startsWith('+PONG')));
  });
}

// ---------------------------------------------------------------------------------------------
// Gateways

function modelsYaml(mockPort, which) {
  const upstream = [`base_url: http://127.0.0.1:${mockPort}/v1`, 'api_key: upstream-key', 'model: bench-model'];
  const entry = (lines, indent) => lines.map((l) => `${' '.repeat(indent)}${l}`);
  const cached = ['  - name: cached', '    provider: openai-compatible', ...entry(upstream, 4), '    cache: { enabled: true }'];
  if (which !== 'main') return cached;
  const target = (id) => [`      - id: ${id}`, '        provider: openai-compatible', ...entry(upstream, 8)];
  return [
    '  - name: fresh',
    '    provider: openai-compatible',
    ...entry(upstream, 4),
    '    cache: { enabled: false }',
    '  - name: routed',
    '    provider: router',
    '    strategy: fallback',
    '    cache: { enabled: false }',
    '    targets:',
    ...target('primary'),
    '  - name: routed2',
    '    provider: router',
    '    strategy: fallback',
    '    cache: { enabled: false }',
    '    targets:',
    ...target('primary'),
    ...target('backup'),
    ...cached,
  ];
}

function gatewayYaml(mockPort, which) {
  const backend = which === 'main' ? 'memory' : which;
  return [
    'log_level: info',
    ...(which === 'redis' ? [`redis_url: "${OPTS.redisUrl}"`] : []),
    'cache:',
    '  enabled: false',
    `  backend: ${backend}`,
    '  deterministic_only: true',
    'models:',
    ...modelsYaml(mockPort, which),
    '',
  ].join('\n');
}

const gateways = {}; // main | sqlite | redis -> { child, pid, base, ... }

// ---------------------------------------------------------------------------------------------
// Requests

const bodyOf = (model, mode, user) =>
  JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'Hello' }],
    temperature: 0,
    ...(user ? { user } : {}),
    ...(mode === 'stream' ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` };
const baseOf = (c, mockBase) => (CASES[c].gateway ? gateways[CASES[c].gateway].base : mockBase);

/** One request of each mode and case, checked by hand; for cached cases it stores the entry. */
async function preflight(c, mockBase) {
  for (const mode of OPTS.modes) {
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${baseOf(c, mockBase)}/v1/chat/completions`, { method: 'POST', headers: HEADERS, body: bodyOf(CASES[c].model, mode, `warm-${RUN_ID}`) });
      const text = await r.text();
      const ok = r.status === 200 && (mode === 'json' ? text.includes('"chat.completion"') : text.trimEnd().endsWith('data: [DONE]'));
      if (!ok) throw new Error(`${c} ${mode} preflight: HTTP ${r.status}\n${text.slice(0, 800)}`);
      if (i === 1 && c.startsWith('cached') && r.headers.get('x-chatgate-cache') !== 'hit') {
        throw new Error(`${c} ${mode}: the second identical request was not a cache hit (x-chatgate-cache: ${r.headers.get('x-chatgate-cache')})`);
      }
    }
  }
}

/** The duration_ms of the audit records tagged `user` (exactly `expected` of them, polled while the writer flushes). */
async function serverTimes(gw, user, expected) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = [];
    let before = null;
    for (;;) {
      const q = new URLSearchParams({ user, limit: '1000', ...(before ? { before: String(before) } : {}) });
      const r = await fetch(`${gw.base}/admin/logs?${q}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
      const body = await r.json();
      if (r.status !== 200) throw new Error(`GET /admin/logs: HTTP ${r.status} ${JSON.stringify(body).slice(0, 300)}`);
      for (const rec of body.data) out.push(rec);
      if (!body.has_more) break;
      before = body.next_before;
    }
    if (out.length >= expected || Date.now() > deadline) {
      return {
        count: out.length,
        durationsMs: out.map((rec) => rec.duration_ms),
        notOk: out.filter((rec) => rec.status !== 200).length,
        cacheHits: out.filter((rec) => rec.cache_hit === true).length,
        providers: [...new Set(out.map((rec) => rec.provider))],
      };
    }
    await sleep(150);
  }
}

// ---------------------------------------------------------------------------------------------
// CPU: quiet cores before a measurement, foreign load during it

const gatewayPids = () => Object.values(gateways).map((g) => g.pid);
let mockPid = null;

function foreignLoad(cpu, hasGateway) {
  if (!PINNING || !cpu?.cores?.[OPTS.gatewayCore] || !cpu.cores[OPTS.loadCore]) return null;
  const p = cpu.procs;
  const out = { [OPTS.loadCore]: Math.max(0, cpu.cores[OPTS.loadCore].busy - (p.mock ?? 0) - (p.load ?? 0)) };
  if (hasGateway) out[OPTS.gatewayCore] = Math.max(0, cpu.cores[OPTS.gatewayCore].busy - (p.gateway ?? 0));
  return out;
}

let idleWaitTotalSec = 0;
async function waitIdle() {
  if (!PINNING || !(OPTS.waitIdleSec > 0) || idleWaitTotalSec >= OPTS.waitIdleTotalSec) return;
  const t0 = Date.now();
  const limit = Math.min(OPTS.waitIdleSec, OPTS.waitIdleTotalSec - idleWaitTotalSec) * 1000;
  while (Date.now() - t0 < limit) {
    const a = cpuSnapshot({});
    await sleep(250);
    const d = cpuDelta(a, cpuSnapshot({}));
    if ((d.cores[OPTS.gatewayCore]?.busy ?? 0) < FOREIGN_LIMIT && (d.cores[OPTS.loadCore]?.busy ?? 0) < FOREIGN_LIMIT) break;
  }
  idleWaitTotalSec += (Date.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Measurement

async function measureBatch(c, mode, round, mockBase) {
  const spec = CASES[c];
  const user = `${c}-${mode}-r${round}-${RUN_ID}`;
  await waitIdle();
  const res = await runLoadClient(
    {
      kind: 'ttfb',
      url: `${baseOf(c, mockBase)}/v1/chat/completions`,
      headers: HEADERS,
      body: bodyOf(spec.model, mode, user),
      warmupBody: bodyOf(spec.model, mode, `warm-${RUN_ID}`),
      stream: mode === 'stream',
      connections: 1,
      requests: OPTS.requests,
      warmupRequests: OPTS.warmupRequests,
      expectHeaders: spec.expect ?? undefined,
      keepSamples: true,
    },
    { core: OPTS.loadCore, pids: { gateway: spec.gateway ? gatewayPids() : null, mock: mockPid } },
  );
  const batch = {
    round,
    user,
    ok: res.ok ?? 0,
    failed: (res.non2xx ?? 0) + (res.errors ?? 0) + (res.badBody ?? 0) + (res.badHeader ?? 0),
    fatal: res.fatal ?? null,
    statusCodes: res.statusCodes,
    errorMessages: res.errorMessages,
    badHeaderValues: res.badHeaderValues,
    client: res.totalMs,
    clientTtfb: res.ttfbMs,
    samples: res.samples ?? { totalMs: [], ttfbMs: [] },
    foreign: foreignLoad(res.cpu, !!spec.gateway),
    cpu: res.cpu,
  };
  batch.disturbed = !!batch.foreign && Object.values(batch.foreign).some((v) => v > FOREIGN_LIMIT);
  if (spec.gateway) {
    const st = await serverTimes(gateways[spec.gateway], user, OPTS.requests);
    batch.server = summarize(st.durationsMs);
    batch.serverDurationsMs = st.durationsMs;
    batch.audit = { count: st.count, notOk: st.notOk, cacheHits: st.cacheHits, providers: st.providers };
    if (st.count !== OPTS.requests) batch.auditProblem = `${st.count} audit records for ${OPTS.requests} requests`;
    if (c.startsWith('cached') && st.cacheHits !== st.count) batch.auditProblem = `${st.count - st.cacheHits} audit records without cache_hit: true`;
  }
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Report

const p = (s, k) => s?.[k] ?? null;
const range = (xs) => (xs.length ? `${f3(Math.min(...xs))}..${f3(Math.max(...xs))}` : '-');
const ratio = (a, b) => (a != null && b != null && b > 0 ? `${(a / b).toFixed(1)}x` : '-');

function aggregate(cell) {
  const all = (k) => cell.batches.flatMap((b) => b.samples[k]);
  cell.client = summarize(all('totalMs'));
  cell.clientTtfb = summarize(all('ttfbMs'));
  cell.roundClientP50 = cell.batches.map((b) => b.client?.p50).filter((v) => v != null);
  if (CASES[cell.case].gateway) {
    cell.server = summarize(cell.batches.flatMap((b) => b.serverDurationsMs ?? []));
    cell.roundServerP50 = cell.batches.map((b) => b.server?.p50).filter((v) => v != null);
  }
  cell.failed = cell.batches.reduce((s, b) => s + b.failed, 0);
  cell.disturbed = cell.batches.filter((b) => b.disturbed).length;
}

function report(results) {
  const lines = [];
  const say = (s = '') => lines.push(s);
  const m = results.machine;
  const cells = results.cells;
  const get = (mode, c) => cells[`${mode}/${c}`];
  say(
    `Chatgate cache and routing latency, ${results.startedAt} - git ${results.git.commit ?? '?'}${results.git.dirty ? ' (dirty)' : ''}, ` +
      `node ${m.node}, ${m.ncpu} x ${m.cpus}${m.pinning ? '' : ' - NOT PINNED'}`,
  );
  say(
    `1 connection, sequential; ${OPTS.rounds} rounds x ${OPTS.requests} requests per case and mode (after ${OPTS.warmupRequests} warm-up each), ` +
      `cases interleaved; Chatgate on core ${OPTS.gatewayCore}, mock + client on core ${OPTS.loadCore}`,
  );
  say('');
  say('== Per case (ms): client = request sent -> last byte (undici); server = audit duration_ms ==');
  const rows = [];
  for (const mode of OPTS.modes) {
    for (const c of OPTS.cases) {
      const cell = get(mode, c);
      if (!cell) continue;
      if (cell.error) {
        rows.push([mode, CASES[c].label, 'NOT MEASURED', '', '', '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        mode,
        CASES[c].label,
        f3(p(cell.client, 'p50')),
        f3(p(cell.client, 'p99')),
        f3(p(cell.clientTtfb, 'p50')),
        cell.server ? f3(cell.server.p50) : '-',
        cell.server ? f3(cell.server.p99) : '-',
        range(cell.roundClientP50),
        cell.server ? range(cell.roundServerP50) : '-',
        cell.disturbed ? `${cell.disturbed}/${cell.batches.length}` : '',
        cell.failed ? `${cell.failed} !!` : '0',
      ]);
    }
  }
  say(
    table(
      ['mode', 'case', 'client p50', 'client p99', 'TTFB p50', 'server p50', 'server p99', 'rounds: client p50', 'rounds: server p50', 'disturbed', 'failed'],
      rows,
      ['l', 'l'],
    ),
  );
  say('   p50/p99 over all rounds pooled; "rounds": the range of the per-round p50s (the spread).');
  say(`   disturbed: rounds in which processes outside the benchmark used > ${pct(FOREIGN_LIMIT)} of a benchmark core.`);

  // The summary: hit vs fresh, routing added, in one table.
  say('');
  say('== Summary: cache hit vs fresh upstream call, and what routing adds (ms) ==');
  const srows = [];
  const summary = {};
  const d = (a, b, k) => (a?.[k] != null && b?.[k] != null ? a[k] - b[k] : null);
  const roundDiffs = (a, b, key) =>
    a && b ? a.batches.map((x, i) => (x[key]?.p50 != null && b.batches[i]?.[key]?.p50 != null ? x[key].p50 - b.batches[i][key].p50 : null)).filter((v) => v != null) : [];
  for (const mode of OPTS.modes) {
    const fresh = get(mode, 'fresh');
    const direct = get(mode, 'direct');
    const ok = (cell) => cell && !cell.error;
    if (ok(direct)) srows.push([mode, 'upstream called directly (floor)', f3(direct.client.p50), f3(direct.client.p99), '-', '-', range(direct.roundClientP50)]);
    if (ok(fresh)) srows.push([mode, 'fresh upstream call through Chatgate', f3(fresh.client.p50), f3(fresh.client.p99), f3(fresh.server.p50), f3(fresh.server.p99), range(fresh.roundClientP50)]);
    for (const c of ['cached', 'cached-sqlite', 'cached-redis']) {
      const hit = get(mode, c);
      if (!ok(hit)) continue;
      srows.push([mode, `${CASES[c].label}`, f3(hit.client.p50), f3(hit.client.p99), f3(hit.server.p50), f3(hit.server.p99), range(hit.roundClientP50)]);
      if (ok(fresh)) {
        srows.push([
          mode,
          `  fresh / hit (${c.replace('cached-', '').replace('cached', 'memory')})`,
          ratio(fresh.client.p50, hit.client.p50),
          ratio(fresh.client.p99, hit.client.p99),
          ratio(fresh.server.p50, hit.server.p50),
          ratio(fresh.server.p99, hit.server.p99),
          '',
        ]);
        summary[`${mode}/${c}`] = {
          hitServerP50Ms: hit.server.p50,
          hitServerP99Ms: hit.server.p99,
          hitClientP50Ms: hit.client.p50,
          hitClientP99Ms: hit.client.p99,
          freshOverHitClientP50: fresh.client.p50 / hit.client.p50,
          freshOverHitServerP50: fresh.server.p50 / hit.server.p50,
        };
      }
    }
    for (const c of ['routed', 'routed2']) {
      const r = get(mode, c);
      if (!ok(r) || !ok(fresh)) continue;
      const rc = roundDiffs(r, fresh, 'client');
      srows.push([
        mode,
        `routing added, ${c === 'routed' ? '1 target' : '2 targets'} (routed - fresh)`,
        signed(d(r.client, fresh.client, 'p50')),
        signed(d(r.client, fresh.client, 'p99')),
        signed(d(r.server, fresh.server, 'p50')),
        signed(d(r.server, fresh.server, 'p99')),
        rc.length ? `${signed(Math.min(...rc))}..${signed(Math.max(...rc))}` : '-',
      ]);
      summary[`${mode}/${c}`] = {
        addedClientP50Ms: d(r.client, fresh.client, 'p50'),
        addedClientP99Ms: d(r.client, fresh.client, 'p99'),
        addedServerP50Ms: d(r.server, fresh.server, 'p50'),
        addedServerP99Ms: d(r.server, fresh.server, 'p99'),
        roundsAddedClientP50Ms: rc,
        roundsAddedServerP50Ms: roundDiffs(r, fresh, 'server'),
      };
    }
  }
  say(table(['mode', 'what', 'client p50', 'client p99', 'server p50', 'server p99', 'rounds (client p50)'], srows, ['l', 'l']));
  say('   "fresh / hit": how many times faster a hit is; "routing added": differences of the pooled percentiles,');
  say('   "rounds": the range of the per-round values (per-round difference for routing).');

  say('');
  say(`== Target: a cache hit's server time p50 < ${OPTS.hitThresholdMs} ms ("well under a millisecond") ==`);
  const verdicts = [];
  for (const mode of OPTS.modes) {
    for (const c of ['cached', 'cached-sqlite', 'cached-redis']) {
      const hit = get(mode, c);
      if (!hit) continue;
      const v = hit.error ? null : hit.server.p50;
      const pass = v == null ? null : v < OPTS.hitThresholdMs;
      verdicts.push({ mode, case: c, serverP50Ms: v, serverP99Ms: hit.server?.p99 ?? null, pass });
      say(
        `  [${pass == null ? 'n/a ' : pass ? 'PASS' : 'FAIL'}] ${mode}, ${CASES[c].label}: server p50 ${f3(v)} ms, p99 ${f3(hit.server?.p99)} ms ` +
          `(per round p50 ${range(hit.roundServerP50 ?? [])}); client p50 ${f3(hit.client?.p50)} ms`,
      );
    }
  }
  return { text: lines.join('\n'), summary, verdicts };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const waited = await waitForOtherBenchmarks();
  if (waited.stillRunning.length) log(`!! other benchmarks still running after ${Math.round(waited.waitedSec)} s; going on anyway`);
  const started = new Date();
  if (!PINNING) log('!! WARNING: processes are NOT pinned (no taskset or < 2 CPUs); figures are not comparable.');

  buildOrWarn(OPTS.build);

  const results = {
    benchmark: 'cache-routing-latency',
    startedAt: started.toISOString(),
    options: OPTS,
    machine: machineInfo(),
    git: gitInfo(),
    waitedForOtherBenchmarksSec: waited.waitedSec,
    otherBenchmarksRunning: waited.stillRunning,
    notes: [],
    cells: {},
  };

  if (OPTS.cases.includes('cached-redis') && !(await redisReachable(OPTS.redisUrl))) {
    results.notes.push(`Redis at ${OPTS.redisUrl} does not answer PING: case cached-redis skipped`);
    OPTS.cases = OPTS.cases.filter((c) => c !== 'cached-redis');
  }
  for (const n of results.notes) log(`!! ${n}`);

  const mock = await startMock(OPTS.loadCore);
  mockPid = mock.child.pid;
  const mockBase = `http://127.0.0.1:${mock.port}`;
  log(`mock upstream ${mockBase} (core ${OPTS.loadCore})`);

  const needed = [...new Set(OPTS.cases.map((c) => CASES[c].gateway).filter(Boolean))];
  const usable = new Set(OPTS.cases);
  for (const which of needed) {
    try {
      gateways[which] = await startChatgateServe({ yaml: gatewayYaml(mock.port, which), dir: path.join(TMP, which), core: OPTS.gatewayCore, masterKey: MASTER_KEY });
      log(`chatgate (${which}) ${gateways[which].base} (core ${OPTS.gatewayCore}, pid ${gateways[which].pid})`);
    } catch (err) {
      for (const c of OPTS.cases) {
        if (CASES[c].gateway === which) {
          usable.delete(c);
          for (const mode of OPTS.modes) results.cells[`${mode}/${c}`] = { case: c, mode, error: `chatgate (${which}) did not start: ${err.message}` };
        }
      }
      log(`!! chatgate (${which}) did not start:\n${err.message}`);
    }
  }
  for (const c of OPTS.cases) {
    if (!usable.has(c)) continue;
    try {
      await preflight(c, mockBase);
    } catch (err) {
      usable.delete(c);
      for (const mode of OPTS.modes) results.cells[`${mode}/${c}`] = { case: c, mode, error: err.message };
      log(`!! ${c}: ${err.message}`);
    }
  }
  const cases = OPTS.cases.filter((c) => usable.has(c));
  for (const mode of OPTS.modes) for (const c of cases) results.cells[`${mode}/${c}`] = { case: c, mode, batches: [] };

  // Round 0 (not recorded): one batch per case and mode so that every process is warm.
  log(`warm-up: ${OPTS.warmupRequests * 2} requests per case and mode`);
  for (const mode of OPTS.modes) {
    for (const c of cases) {
      await runLoadClient(
        {
          kind: 'ttfb',
          url: `${baseOf(c, mockBase)}/v1/chat/completions`,
          headers: HEADERS,
          body: bodyOf(CASES[c].model, mode, `warm-${RUN_ID}`),
          stream: mode === 'stream',
          connections: 1,
          requests: OPTS.warmupRequests,
          warmupRequests: OPTS.warmupRequests,
        },
        { core: OPTS.loadCore },
      );
    }
  }

  for (let round = 1; round <= OPTS.rounds; round++) {
    const order = round % 2 ? cases : [...cases].reverse();
    for (const mode of OPTS.modes) {
      const line = [];
      for (const c of order) {
        const b = await measureBatch(c, mode, round, mockBase);
        results.cells[`${mode}/${c}`].batches.push(b);
        line.push(`${c} ${f3(b.client?.p50)}${b.server ? `/${f3(b.server.p50)}` : ''}${b.failed || b.fatal ? ' !!' : ''}${b.disturbed ? ' (disturbed)' : ''}`);
      }
      log(`round ${round}/${OPTS.rounds} ${mode}: p50 client/server ms: ${line.join(', ')}`);
    }
  }

  await stopChild(mock.child).catch(() => {});
  for (const gw of Object.values(gateways)) await stopChild(gw.child);

  for (const cell of Object.values(results.cells)) if (!cell.error) aggregate(cell);
  const rep = report(results);
  results.summary = rep.summary;
  results.verdicts = rep.verdicts;
  results.finishedAt = new Date().toISOString();
  results.idleWaitSec = idleWaitTotalSec;
  console.log(rep.text);

  const problems = [];
  for (const cell of Object.values(results.cells)) {
    const name = `${cell.mode} ${cell.case}`;
    if (cell.error) {
      problems.push(`${name}: NOT MEASURED: ${cell.error.split('\n')[0]}`);
      continue;
    }
    for (const b of cell.batches) {
      if (b.fatal) problems.push(`${name} round ${b.round}: ${b.fatal.split('\n')[0]}`);
      if (b.failed) {
        problems.push(
          `${name} round ${b.round}: ${b.failed} failed (status ${JSON.stringify(b.statusCodes)}, errors ${JSON.stringify(b.errorMessages)}` +
            `${b.badHeaderValues && Object.keys(b.badHeaderValues).length ? `, wrong headers ${JSON.stringify(b.badHeaderValues)}` : ''})`,
        );
      }
      if (b.auditProblem) problems.push(`${name} round ${b.round}: ${b.auditProblem}`);
    }
  }
  results.problems = problems;
  console.log('');
  if (problems.length) {
    console.log('!'.repeat(78));
    console.log('!! THIS RUN HAD FAILED REQUESTS OR MISSING CASES: its figures are not valid as they stand');
    for (const pr of problems.slice(0, 20)) console.log(`!!   ${pr}`);
    if (problems.length > 20) console.log(`!!   ... and ${problems.length - 20} more (see the JSON)`);
    console.log('!'.repeat(78));
  } else {
    console.log(
      'All requests answered 200 with a complete body and the expected headers (x-chatgate-cache: hit on every cached answer, ' +
        'none on fresh/routed; x-chatgate-target: primary on routed); one audit record per request.',
    );
  }
  const disturbed = Object.values(results.cells).reduce((s, c) => s + (c.disturbed || 0), 0);
  if (disturbed) console.log(`!! ${disturbed} batch(es) were disturbed by other processes (see the per-case table); rerun on a quiet machine.`);
  if (waited.waitedSec > 1) console.log(`(waited ${Math.round(waited.waitedSec)} s for other benchmarks before starting)`);

  // Raw samples stay out of the JSON (per-round summaries are kept); it would be megabytes.
  for (const cell of Object.values(results.cells)) {
    for (const b of cell.batches ?? []) {
      delete b.samples;
      delete b.serverDurationsMs;
    }
  }
  const outFile = OPTS.out || path.join(BENCH_DIR, 'results', `cache-routing-latency-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${path.relative(process.cwd(), outFile)}`);
  if (OPTS.keepTmp) console.log(`temp dir kept: ${TMP}`);
  return problems.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    killAll();
    process.exitCode = 2;
  },
);
