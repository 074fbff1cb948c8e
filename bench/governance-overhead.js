#!/usr/bin/env node
// Governance overhead benchmark (`npm run bench:governance`). See bench/README.md.
//
// What API keys, rate limits/budgets and the audit log cost, against the same Chatgate with
// them off, in one run, on SQLite and on PostgreSQL + Redis; then whether audit writing holds
// at a sustained ~1,000 requests/s without rising latency or memory.
//
// Configurations (each a fresh `node bin/chatgate.js serve` pinned to the gateway core, one at
// a time, in front of bench/mock-upstream.js as model gpt-4-turbo, provider openai-compatible):
//   off             master key, audit off: no key lookup, no limits, no audit
//   sqlite          an API key (admin API; rpm/tpm/budget far above the load), audit on, SQLite
//                   in a temp data dir, in-memory counters
//   postgres+redis  the same key settings, database_url = a fresh schema (dropped afterwards),
//                   redis_url
//   sqlite-nojournal, postgres+redis-nojournal
//                   the same with `audit.journal: false` (no crash journal): the journal's
//                   cost is printed as on - nojournal (ms) and on / nojournal (throughput)
//
//   node bench/governance-overhead.js [--quick] [--configs off,sqlite-nojournal,sqlite,postgres+redis]
//        [--modes json,stream] [--duration S] [--warmup S] [--connections 16] [--requests N]
//        [--sustained-configs sqlite,postgres+redis] [--sustained-rate 1000]
//        [--sustained-duration 60] [--sustained-warmup 5] [--slice 5] [--sustained-mode json]
//        [--database-url URL] [--redis-url URL] [--no-build] [--gateway-core 0] [--load-core 1]
//        [--out FILE] [--keep-tmp] [--gateway-node-args "--cpu-prof --cpu-prof-dir=DIR"]
//
// Every flag also reads an environment variable: BENCH_CONFIGS, BENCH_MODES, BENCH_DURATION,
// BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_REQUESTS, BENCH_SUSTAINED_CONFIGS,
// BENCH_SUSTAINED_RATE, BENCH_SUSTAINED_DURATION, BENCH_SUSTAINED_WARMUP, BENCH_SLICE,
// BENCH_SUSTAINED_MODE, BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_NO_BUILD=1, BENCH_QUICK=1,
// BENCH_GATEWAY_CORE, BENCH_LOAD_CORE, BENCH_OUT, BENCH_KEEP_TMP=1, BENCH_GATEWAY_NODE_ARGS.
//
// --quick: 1 s warm-up + 3 s loaded, 500 unloaded requests, 20 s sustained (about 2 minutes).
// --sustained-configs none: skip the sustained phase; --configs none: skip the overhead phase.
//
// Exit status: 0 all requests answered 200 with a complete body and every verdict PASS;
// 1 a request failed, a count/verification failed or a verdict is FAIL; 2 the harness failed.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { argFlag, flag, printHelpIfAsked } from './flags.js';
import {
  BENCH_DIR,
  PINNING,
  ROOT,
  cpuDelta,
  cpuSnapshot,
  f1,
  f2,
  f3,
  gitInfo,
  int,
  killAll,
  log,
  machineInfo,
  pct,
  pidsByName,
  rssMB,
  runLoadClient,
  signed,
  sleep,
  startChatgateServe,
  startMock,
  stopChild,
  summarize,
  table,
  tail,
  cleanUpOnExit,
} from './harness.js';

const require = createRequire(import.meta.url);

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);

const boolFlag = argFlag;
const list = (v) => String(v).split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');

const QUICK = boolFlag('quick', 'BENCH_QUICK');
const OPTS = {
  configs: list(flag('configs', 'BENCH_CONFIGS', 'off,sqlite-nojournal,sqlite,postgres+redis')),
  modes: list(flag('modes', 'BENCH_MODES', 'json,stream')),
  durationSec: Number(flag('duration', 'BENCH_DURATION', QUICK ? 3 : 10)),
  warmupSec: Number(flag('warmup', 'BENCH_WARMUP', QUICK ? 1 : 2)),
  connections: Number(flag('connections', 'BENCH_CONNECTIONS', 16)),
  requests: Number(flag('requests', 'BENCH_REQUESTS', QUICK ? 500 : 2000)),
  sustainedConfigs: list(flag('sustained-configs', 'BENCH_SUSTAINED_CONFIGS', 'sqlite,postgres+redis')),
  sustainedRate: Number(flag('sustained-rate', 'BENCH_SUSTAINED_RATE', 1000)),
  sustainedSec: Number(flag('sustained-duration', 'BENCH_SUSTAINED_DURATION', QUICK ? 20 : 60)),
  sustainedWarmupSec: Number(flag('sustained-warmup', 'BENCH_SUSTAINED_WARMUP', QUICK ? 2 : 5)),
  sliceSec: Number(flag('slice', 'BENCH_SLICE', 5)),
  sustainedMode: flag('sustained-mode', 'BENCH_SUSTAINED_MODE', 'json'),
  databaseUrl: flag('database-url', 'BENCH_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test'),
  redisUrl: flag('redis-url', 'BENCH_REDIS_URL', 'redis://127.0.0.1:6379'),
  build: !boolFlag('no-build', 'BENCH_NO_BUILD'),
  gatewayCore: String(flag('gateway-core', 'BENCH_GATEWAY_CORE', '0')),
  loadCore: String(flag('load-core', 'BENCH_LOAD_CORE', '1')),
  out: flag('out', 'BENCH_OUT', ''),
  // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": node options of the gateway (for profiling)
  gatewayNodeArgs: String(flag('gateway-node-args', 'BENCH_GATEWAY_NODE_ARGS', '')).split(' ').filter(Boolean),
  keepTmp: boolFlag('keep-tmp', 'BENCH_KEEP_TMP'),
  quick: QUICK,
};
const CONFIGS = ['off', 'sqlite', 'postgres+redis', 'sqlite-nojournal', 'postgres+redis-nojournal'];
/** sqlite or postgres+redis: where a config stores its audit log. */
const backendOf = (config) => config.replace(/-nojournal$/, '');
// The audit journal's cost (docs/governance.md): at most this much added to p50 and lost in throughput.
const JOURNAL_TARGETS = { maxAddedP50Ms: 0.05, minThroughputRatio: 0.95 };
for (const c of [...OPTS.configs, ...OPTS.sustainedConfigs]) if (!CONFIGS.includes(c)) die(`unknown config "${c}" (${CONFIGS.join(', ')})`);
for (const m of [...OPTS.modes, OPTS.sustainedMode]) if (!['json', 'stream'].includes(m)) die(`unknown mode "${m}" (json, stream)`);
if (OPTS.sustainedConfigs.includes('off')) die('the sustained phase measures audit writing: use sqlite and/or postgres+redis');

// "Without rising latency or memory", made checkable.
// maxInFlightShare: requests still unanswered when a slice ends, as seconds of load (0.05 s =
// 50 at 1,000 req/s): more means requests queue, i.e. the gateway cannot sustain the rate,
// and a flat (but high) latency would pass the trend check while failing the rate.
const TARGETS = { maxP99Growth: 1.5, maxRssGrowthMB: 50, minRateShare: 0.95, maxInFlightShare: 0.05 };
// A measurement is flagged when processes outside the benchmark (and outside PostgreSQL and
// Redis) used more than this many cores' worth of CPU during it.
const FOREIGN_LIMIT = 0.15;

function die(msg) {
  console.error(`governance-overhead: ${msg}`);
  process.exit(2);
}

const MASTER_KEY = `bench-${randomBytes(12).toString('hex')}`;
var TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-gov-bench-')); // var: read by the exit handler
const pgSchemas = new Set();

cleanUpOnExit({ dir: () => TMP, keep: OPTS.keepTmp, onSignal: () => dropSchemas() });

const REQUEST = { model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'Hello' }] };
const BODIES = {
  json: JSON.stringify(REQUEST),
  stream: JSON.stringify({ ...REQUEST, stream: true, stream_options: { include_usage: true } }),
};
const KEY_SETTINGS = { rpm: 10_000_000, tpm: 1e12, budget_usd: 1e9, budget_period: 'month' };

// ---------------------------------------------------------------------------------------------
// PostgreSQL schema per run, the databases' processes

async function pgClient(url = OPTS.databaseUrl) {
  const pg = require('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}
async function createSchema() {
  const schema = `bench_gov_${randomBytes(5).toString('hex')}`;
  const c = await pgClient();
  try {
    await c.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await c.end();
  }
  pgSchemas.add(schema);
  const sep = OPTS.databaseUrl.includes('?') ? '&' : '?';
  return { schema, url: `${OPTS.databaseUrl}${sep}options=-c%20search_path%3D${schema}` };
}
async function dropSchemas() {
  if (pgSchemas.size === 0) return;
  const c = await pgClient();
  try {
    for (const s of pgSchemas) {
      await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      pgSchemas.delete(s);
    }
  } finally {
    await c.end();
  }
}
// PostgreSQL and Redis run unpinned (system services): their CPU is reported separately and
// not counted as a disturbance.
const dbPids = () => pidsByName(/^(postgres|redis-server)$/);

// Counts audit records of one key straight from the database (cheap: an index on key_id).
async function openCounter(kind, where) {
  if (kind === 'sqlite') {
    const Database = require('better-sqlite3');
    const db = new Database(path.join(where, 'chatgate.db'), { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    const st = db.prepare('SELECT COUNT(*) AS n FROM audit_log WHERE key_id = ?');
    return { count: async (keyId) => st.get(keyId).n, close: async () => db.close() };
  }
  const c = await pgClient(where);
  return {
    count: async (keyId) => Number((await c.query('SELECT COUNT(*) AS n FROM audit_log WHERE key_id = $1', [keyId])).rows[0].n),
    close: () => c.end(),
  };
}

// ---------------------------------------------------------------------------------------------
// Chatgate

function buildChatgate() {
  log('building Chatgate (npm run build) ...');
  const t0 = Date.now();
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  log(`  build took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (r.status !== 0) die(`npm run build failed (exit ${r.status})\n${(r.stdout || '').slice(-3000)}${(r.stderr || '').slice(-2000)}`);
}

let serial = 0;
async function startChatgate(config, mockPort) {
  const dir = fs.mkdtempSync(path.join(TMP, `${config.replace('+', '-')}-${++serial}-`));
  const dataDir = path.join(dir, 'data');
  let pg = null;
  const yaml = [
    'log_level: info',
    'audit:',
    `  enabled: ${config !== 'off'}`,
    ...(config.endsWith('-nojournal') ? ['  journal: false'] : []),
    'models:',
    '  - name: gpt-4-turbo',
    '    provider: openai-compatible',
    `    base_url: http://127.0.0.1:${mockPort}/v1`,
    '    api_key: upstream-key',
  ];
  if (backendOf(config) === 'postgres+redis') {
    pg = await createSchema();
    yaml.unshift(`database_url: "${pg.url}"`, `redis_url: "${OPTS.redisUrl}"`);
  }
  const started = await startChatgateServe({ yaml: yaml.join('\n'), dir, core: OPTS.gatewayCore, masterKey: MASTER_KEY, nodeArgs: OPTS.gatewayNodeArgs });
  const { child, base, logFile, errFile } = started;
  const gw = { config, child, pid: child.pid, base, dataDir, pg, logFile, errFile, bearer: MASTER_KEY, keyId: null, chatRequests: 0 };
  if (config !== 'off') {
    const k = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ name: 'governance-bench', ...KEY_SETTINGS }),
    });
    const key = await k.json();
    if (k.status !== 201 || !String(key.secret).startsWith('sk-cg-')) {
      await stopChild(child);
      throw new Error(`POST /admin/keys: HTTP ${k.status} ${JSON.stringify(key).slice(0, 500)}`);
    }
    gw.bearer = key.secret;
    gw.keyId = key.id;
  }
  return gw;
}

const headersOf = (gw) => ({ 'content-type': 'application/json', authorization: `Bearer ${gw.bearer}` });

async function preflight(gw) {
  for (const mode of ['json', 'stream']) {
    const r = await fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', headers: headersOf(gw), body: BODIES[mode] });
    const text = await r.text();
    gw.chatRequests++;
    const ok = r.status === 200 && (mode === 'json' ? text.includes('"chat.completion"') : text.includes('"chat.completion.chunk"') && text.trimEnd().endsWith('data: [DONE]'));
    if (!ok) throw new Error(`${gw.config} ${mode} preflight failed: HTTP ${r.status}\n${text.slice(0, 1000)}`);
    if (gw.keyId && !r.headers.get('x-ratelimit-limit-requests')) log(`  (note: no x-ratelimit-limit-requests header on the ${mode} answer)`);
  }
  const r = await fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODIES.json });
  await r.arrayBuffer(); // recorded too, but without a key_id: not counted
  if (r.status !== 401) throw new Error(`${gw.config}: a request without a key got HTTP ${r.status}, not 401`);
}

async function admin(gw, p) {
  const r = await fetch(`${gw.base}${p}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`GET ${p}: HTTP ${r.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

// Waits until the audit log holds `expected` records of the key (the writer flushes every
// 100 ms), then checks the count through the admin API and the hash chain.
async function verifyAudit(gw, expected, counter) {
  const t0 = Date.now();
  let n = await counter.count(gw.keyId);
  while (n < expected && Date.now() - t0 < 15_000) {
    await sleep(100);
    n = await counter.count(gw.keyId);
  }
  const waitedMs = Date.now() - t0;
  await sleep(300);
  n = await counter.count(gw.keyId);
  const usage = await admin(gw, `/admin/usage?group_by=key&key_id=${gw.keyId}`);
  const viaApi = usage.data.reduce((s, row) => s + row.requests, 0);
  const verify = await admin(gw, '/admin/audit/verify');
  return { expected, sql: n, api: viaApi, drainMs: waitedMs, verify, ok: n === expected && viaApi === expected && verify.ok === true };
}

// ---------------------------------------------------------------------------------------------
// Measurements

function withForeign(res) {
  if (!res.cpu) return res;
  const p = res.cpu.procs;
  const ours = (p.gateway ?? 0) + (p.mock ?? 0) + (p.load ?? 0) + (p.db ?? 0);
  const busy = Object.values(res.cpu.cores).reduce((s, c) => s + c.busy, 0);
  res.cpu.foreign = Math.max(0, busy - ours);
  return res;
}

async function measureConfig(gw, mockPid) {
  const url = `${gw.base}/v1/chat/completions`;
  const pids = { gateway: gw.pid, mock: mockPid, db: dbPids() };
  const out = { loaded: {}, unloaded: {} };
  for (const mode of OPTS.modes) {
    log(`  [${gw.config}] ${mode}: autocannon ${OPTS.connections} connections, ${OPTS.warmupSec} s warm-up + ${OPTS.durationSec} s`);
    out.loaded[mode] = withForeign(
      await runLoadClient(
        { kind: 'autocannon', url, body: BODIES[mode], headers: headersOf(gw), connections: OPTS.connections, durationSec: OPTS.durationSec, warmupSec: OPTS.warmupSec },
        { core: OPTS.loadCore, pids },
      ),
    );
    log(`  [${gw.config}] ${mode}: unloaded, 1 connection x ${OPTS.requests} sequential requests`);
    out.unloaded[mode] = withForeign(
      await runLoadClient(
        { kind: 'ttfb', url, body: BODIES[mode], headers: headersOf(gw), stream: mode === 'stream', connections: 1, requests: OPTS.requests, warmupRequests: Math.min(500, Math.max(100, Math.round(OPTS.requests / 4))) },
        { core: OPTS.loadCore, pids },
      ),
    );
  }
  return out;
}

async function sustained(gw, mockPid) {
  const counter = await openCounter(backendOf(gw.config) === 'sqlite' ? 'sqlite' : 'postgres', backendOf(gw.config) === 'sqlite' ? gw.dataDir : gw.pg.url);
  const pids = { gateway: gw.pid, mock: mockPid, db: dbPids() };
  const samples = [];
  const t0 = Date.now();
  const rss0 = rssMB(gw.pid);
  let busy = Promise.resolve();
  let measureRss = null;
  let lastDb = cpuSnapshot(pids);
  const onLine = (line) => {
    if (!line.startsWith('SLICE ')) return;
    const s = JSON.parse(line.slice(6));
    const snap = cpuSnapshot(pids);
    const cpu = cpuDelta(lastDb, snap);
    lastDb = snap;
    s.rssMB = rssMB(gw.pid);
    s.gwCpu = cpu.procs.gateway;
    s.dbCpu = cpu.procs.db;
    // Backlog = responses the client has received (preflight and warm-up included) minus
    // records in the database: records waiting in the writer's queue (or being written).
    busy = busy.then(async () => {
      const n = await counter.count(gw.keyId);
      s.recorded = n;
      s.backlog = gw.chatRequests + s.doneTotal - n;
    });
    samples.push(s);
    log(
      `    slice ${String(s.i + 1).padStart(2)} (${s.atSec} s): ${s.sent} sent, p50 ${f2(s.p50)} ms, p99 ${f2(s.p99)} ms, in flight ${s.inFlight}, RSS ${f1(s.rssMB)} MB, gw CPU ${pct(s.gwCpu)}`,
    );
  };
  log(`  [${gw.config}] sustained: ${OPTS.sustainedRate} req/s (${OPTS.sustainedMode}) for ${OPTS.sustainedWarmupSec} s warm-up + ${OPTS.sustainedSec} s, slices of ${OPTS.sliceSec} s`);
  const res = await runLoadClient(
    {
      kind: 'paced',
      url: `${gw.base}/v1/chat/completions`,
      body: BODIES[OPTS.sustainedMode],
      headers: headersOf(gw),
      stream: OPTS.sustainedMode === 'stream',
      rate: OPTS.sustainedRate,
      durationSec: OPTS.sustainedSec,
      warmupSec: OPTS.sustainedWarmupSec,
      sliceSec: OPTS.sliceSec,
      connections: 64,
    },
    { core: OPTS.loadCore, pids, onLine },
  );
  await busy;
  withForeign(res);
  res.samples = samples;
  res.rssStartMB = rss0;
  res.wallSec = (Date.now() - t0) / 1000;
  const expected = gw.chatRequests + (res.warmupDone ?? 0) + (res.done ?? 0);
  res.audit = res.fatal ? null : await verifyAudit(gw, expected, counter);
  await counter.close();
  return res;
}

// The journal's own cost, in process: what `record()` adds to each request is one synchronous
// `AuditJournal.append` (JSON + write(2), + fsync(2) with journal_fsync). Timed call by call on
// a record like the benchmark's (no bodies), released every 500 records as the writer does.
// Robust on a busy machine where the end-to-end on/off difference is lost in the noise.
async function journalMicro() {
  const { AuditJournal } = await import(pathToFileURL(path.join(ROOT, 'dist/audit/audit-journal.js')).href);
  const dir = fs.mkdtempSync(path.join(TMP, 'journal-micro-'));
  const records = (n) =>
    Array.from({ length: n }, (_, i) => ({
      requestId: `req_${randomBytes(16).toString('hex')}`, createdAt: Date.now(), method: 'POST', path: '/v1/chat/completions', model: 'gpt-4-turbo',
      provider: 'openai-compatible:gpt-4-turbo', status: 200, durationMs: 1.23 + i / 1000, promptTokens: 8, completionTokens: 12, cachedTokens: 0, costMicros: 440,
      stream: false, cacheHit: null, errorCode: null, keyId: 'key_0123456789abcdef', user: null, clientIp: '127.0.0.1', requestBody: null, responseBody: null, piiCounts: null,
    }));
  const run = (fsync, n) => {
    const batch = records(n);
    const journal = new AuditJournal({ directory: dir, fsync, onError: (message) => log(`  journal: ${message}`) });
    const micros = new Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      journal.append(batch[i]);
      micros[i] = Number(process.hrtime.bigint() - t0) / 1e3;
      if (i % 500 === 499) journal.release(i + 1);
    }
    journal.release(n);
    journal.close();
    return summarize(micros);
  };
  run(false, 5_000); // warm-up
  const plain = run(false, 50_000);
  const fsync = run(true, 500);
  return { plain, fsync };
}

// ---------------------------------------------------------------------------------------------
// Report

function problemsOf(where, r) {
  const p = [];
  if (!r) return p;
  if (r.fatal) p.push(`${where}: load client failed: ${r.fatal.split('\n')[0]}`);
  for (const k of ['non2xx', 'errors', 'timeouts', 'mismatches', 'badBody', 'answeredOver30sLate']) if (r[k]) p.push(`${where}: ${r[k]} ${k}`);
  if (r.errorMessages && Object.keys(r.errorMessages).length) p.push(`${where}: errors ${JSON.stringify(r.errorMessages)}`);
  if (r.statusCodeStats) {
    const other = Object.keys(r.statusCodeStats).filter((s) => s !== '200');
    if (other.length) p.push(`${where}: status codes ${JSON.stringify(r.statusCodeStats)}`);
  }
  if (r.statusCodes) {
    const other = Object.keys(r.statusCodes).filter((s) => s !== '200');
    if (other.length) p.push(`${where}: status codes ${JSON.stringify(r.statusCodes)}`);
  }
  if (r.kind === 'autocannon' && r.requests2xx === 0) p.push(`${where}: no successful request`);
  return p;
}

const thirdMean = (arr, which) => {
  const n = Math.max(1, Math.floor(arr.length / 3));
  const part = which === 'first' ? arr.slice(0, n) : arr.slice(arr.length - n);
  return part.reduce((s, v) => s + v, 0) / part.length;
};

function report(results) {
  const lines = [];
  const say = (s = '') => lines.push(s);
  const m = results.machine;
  say(`Chatgate governance overhead, ${results.startedAt} - git ${results.git.commit ?? '?'}${results.git.dirty ? ' (dirty)' : ''}, node ${m.node}, ${m.ncpu} x ${m.cpus}, ${m.memGB} GB${m.pinning ? '' : ' - NOT PINNED'}`);
  const verdicts = [];
  const verdict = (name, pass, detail) => {
    verdicts.push({ name, pass, detail });
    say(`  [${pass == null ? 'n/a ' : pass ? 'PASS' : 'FAIL'}] ${name}: ${detail}`);
  };

  const measured = OPTS.configs.filter((c) => results.configs[c]?.measurements);
  if (measured.length) {
    say('');
    say(`== Overhead: loaded (autocannon, ${OPTS.connections} connections, ${OPTS.durationSec} s after ${OPTS.warmupSec} s) and unloaded (1 connection, ${OPTS.requests} sequential requests) ==`);
    say(`   gateway on core ${OPTS.gatewayCore}; mock + load generator on core ${OPTS.loadCore}; PostgreSQL and Redis unpinned ("db CPU")`);
    const rows = [];
    for (const mode of OPTS.modes) {
      for (const c of measured) {
        const r = results.configs[c].measurements;
        const ac = r.loaded[mode];
        const u = r.unloaded[mode];
        const gwCpu = ac?.cpu?.procs?.gateway;
        rows.push([
          mode,
          c,
          int(ac?.rps),
          f2(ac?.latencyMs?.p50),
          f2(ac?.latencyMs?.p99),
          pct(gwCpu),
          gwCpu ? int(ac.rps / gwCpu) : '-',
          pct(ac?.cpu?.procs?.db),
          f3(u?.totalMs?.p50),
          f3(u?.totalMs?.p99),
          f3(u?.ttfbMs?.p50),
          (ac?.cpu?.foreign ?? 0) > FOREIGN_LIMIT || (u?.cpu?.foreign ?? 0) > FOREIGN_LIMIT ? `YES ${pct(Math.max(ac?.cpu?.foreign ?? 0, u?.cpu?.foreign ?? 0))}` : '',
        ]);
      }
    }
    say(table(['mode', 'config', 'req/s', 'p50 ms', 'p99 ms', 'gw CPU', 'req/s/core', 'db CPU', 'unl. p50', 'unl. p99', 'unl. TTFB p50', 'disturbed'], rows, ['l', 'l']));

    if (results.configs.off?.measurements) {
      say('');
      say('== Added by governance (config - off) ==');
      const off = results.configs.off.measurements;
      const arows = [];
      for (const mode of OPTS.modes) {
        for (const c of measured.filter((x) => x !== 'off')) {
          const r = results.configs[c].measurements;
          const cap = (x) => (x?.cpu?.procs?.gateway ? x.rps / x.cpu.procs.gateway : null);
          arows.push([
            mode,
            c,
            signed(r.unloaded[mode]?.totalMs?.p50 - off.unloaded[mode]?.totalMs?.p50),
            signed(r.unloaded[mode]?.totalMs?.p99 - off.unloaded[mode]?.totalMs?.p99),
            signed(r.loaded[mode]?.latencyMs?.p50 - off.loaded[mode]?.latencyMs?.p50, 2),
            signed(r.loaded[mode]?.latencyMs?.p99 - off.loaded[mode]?.latencyMs?.p99, 2),
            pct(r.loaded[mode]?.rps / off.loaded[mode]?.rps),
            pct(cap(r.loaded[mode]) / cap(off.loaded[mode])),
          ]);
        }
      }
      say(table(['mode', 'config', 'unloaded +p50', 'unloaded +p99', 'loaded +p50', 'loaded +p99', 'req/s vs off', 'req/s/core vs off'], arows, ['l', 'l']));
      say('   ms added against `off` (same run, same upstream); ratios of throughput (req/s, and per gateway core)');
    }
    const pairs = measured.filter((c) => c !== 'off' && !c.endsWith('-nojournal') && measured.includes(`${c}-nojournal`));
    if (pairs.length) {
      say('');
      say('== Audit journal cost (journal on - journal off, same run; throughput as a ratio on / off) ==');
      const jrows = [];
      const jverdicts = [];
      for (const mode of OPTS.modes) {
        for (const c of pairs) {
          const on = results.configs[c].measurements;
          const off = results.configs[`${c}-nojournal`].measurements;
          const cap = (x) => (x?.cpu?.procs?.gateway ? x.rps / x.cpu.procs.gateway : null);
          const addedP50 = on.unloaded[mode]?.totalMs?.p50 - off.unloaded[mode]?.totalMs?.p50;
          const ratio = on.loaded[mode]?.rps / off.loaded[mode]?.rps;
          jrows.push([
            mode,
            c,
            f3(off.unloaded[mode]?.totalMs?.p50),
            f3(on.unloaded[mode]?.totalMs?.p50),
            signed(addedP50),
            signed(on.loaded[mode]?.latencyMs?.p50 - off.loaded[mode]?.latencyMs?.p50, 2),
            int(off.loaded[mode]?.rps),
            int(on.loaded[mode]?.rps),
            f3(ratio),
            f3(cap(on.loaded[mode]) / cap(off.loaded[mode])),
          ]);
          results.journal ??= {};
          results.journal[`${c} ${mode}`] = { addedUnloadedP50Ms: addedP50, throughputRatio: ratio };
          jverdicts.push(
            [`${c} ${mode}: journal adds <= ${JOURNAL_TARGETS.maxAddedP50Ms} ms to the unloaded p50`, addedP50 <= JOURNAL_TARGETS.maxAddedP50Ms, `${signed(addedP50)} ms`],
            [`${c} ${mode}: journal keeps >= ${pct(JOURNAL_TARGETS.minThroughputRatio)} of the throughput`, ratio >= JOURNAL_TARGETS.minThroughputRatio, `${f3(ratio)} (${int(on.loaded[mode]?.rps)} / ${int(off.loaded[mode]?.rps)} req/s)`],
          );
        }
      }
      say(table(['mode', 'config', 'unl. p50 off', 'unl. p50 on', 'unl. +p50', 'loaded +p50', 'req/s off', 'req/s on', 'req/s on/off', 'req/s/core on/off'], jrows, ['l', 'l']));
      say('   a difference of a few hundredths of a ms is within the noise of one run: compare several runs, on a quiet machine');
      for (const args of jverdicts) verdict(...args);
      const micro = results.journalMicro;
      if (micro?.plain) {
        say('');
        say('== Audit journal cost, in process (what it adds to each request: one synchronous append) ==');
        say(`   append: p50 ${f2(micro.plain.p50)} us, p99 ${f2(micro.plain.p99)} us, mean ${f2(micro.plain.mean)} us (${int(micro.plain.count)} records)`);
        say(`   append with journal_fsync: p50 ${f2(micro.fsync.p50)} us, p99 ${f2(micro.fsync.p99)} us (${int(micro.fsync.count)} records; the disk of ${os.tmpdir()})`);
        for (const c of pairs) {
          const base = results.configs[`${c}-nojournal`].measurements.loaded.json ?? results.configs[`${c}-nojournal`].measurements.loaded.stream;
          const perCore = base?.cpu?.procs?.gateway ? base.rps / base.cpu.procs.gateway : null;
          if (!perCore) continue;
          // The gateway is CPU-bound under load: a request costs 1/perCore s of a core, the journal adds the mean append.
          const ratio = 1 / (1 + (micro.plain.mean / 1e6) * perCore);
          say(`   ${c}: at ${int(perCore)} req/s per gateway core (journal off, measured above) the append is ${pct(1 - ratio)} of a request's CPU -> throughput ratio ~${f3(ratio)}`);
          verdict(`${c}: journal append (in process) adds <= ${JOURNAL_TARGETS.maxAddedP50Ms} ms to p50`, micro.plain.p50 / 1000 <= JOURNAL_TARGETS.maxAddedP50Ms, `${f3(micro.plain.p50 / 1000)} ms`);
          verdict(`${c}: journal append (in process) keeps >= ${pct(JOURNAL_TARGETS.minThroughputRatio)} of the throughput`, ratio >= JOURNAL_TARGETS.minThroughputRatio, `~${f3(ratio)}`);
        }
      } else if (micro?.error) say(`   journal in-process measurement failed: ${micro.error}`);
    }
    say('');
    say('== Audit after the overhead runs (records of the key vs chat requests answered; autocannon warm-ups and cut-off requests make this approximate) ==');
    for (const c of measured.filter((x) => x !== 'off')) {
      const a = results.configs[c].audit;
      if (a) say(`  ${c}: ${int(a.sql)} records of the key, audit/verify ${a.verify?.ok ? 'ok' : 'NOT OK'} (${int(a.verify?.checked)} records checked)`);
    }
  }

  const sus = OPTS.sustainedConfigs.filter((c) => results.sustained[c]);
  for (const c of sus) {
    const s = results.sustained[c];
    say('');
    say(`== Sustained audit writing: ${c}, ${OPTS.sustainedRate} req/s (${OPTS.sustainedMode}) for ${OPTS.sustainedSec} s after ${OPTS.sustainedWarmupSec} s warm-up ==`);
    if (s.error || s.fatal) {
      say(`  NOT MEASURED: ${(s.error || s.fatal).split('\n')[0]}`);
      verdict(`${c}: sustained ${OPTS.sustainedRate} req/s`, false, 'not measured');
      continue;
    }
    const rows = s.samples.map((x) => [
      x.i + 1,
      `${x.atSec}`,
      int(x.sent / OPTS.sliceSec),
      int(x.ok),
      x.bad,
      f2(x.p50),
      f2(x.p99),
      f2(x.max),
      x.inFlight,
      f1(x.rssMB),
      pct(x.gwCpu),
      pct(x.dbCpu),
      int(x.backlog),
    ]);
    say(table(['slice', 'at s', 'req/s', 'ok', 'bad', 'p50 ms', 'p99 ms', 'max ms', 'in flight', 'RSS MB', 'gw CPU', 'db CPU', 'audit backlog'], rows));
    say(`   whole phase: ${int(s.sent)} sent at ${f1(s.sentRate)} req/s (client lag max ${f1(s.maxLagMs)} ms), ${int(s.ok)} ok, p50 ${f2(s.latencyMs?.p50)} ms, p99 ${f2(s.latencyMs?.p99)} ms; ` +
      `gateway CPU ${pct(s.cpu?.procs?.gateway)}, db CPU ${pct(s.cpu?.procs?.db)}, other processes ${pct(s.cpu?.foreign)}${(s.cpu?.foreign ?? 0) > FOREIGN_LIMIT ? ' (DISTURBED)' : ''}`);
    say('   audit backlog: answers received minus records of the key in the database when the slice ended (the writer flushes every 100 ms)');
    const a = s.audit;
    if (a) {
      say(`   audit: ${int(a.expected)} chat requests answered (preflight, warm-up and measured), ${int(a.sql)} records (SQL), ${int(a.api)} (GET /admin/usage); drained ${a.drainMs} ms after the load; audit/verify ${a.verify?.ok ? 'ok' : 'NOT OK'} (${int(a.verify?.checked)} records)`);
    }
    const p99s = s.samples.map((x) => x.p99).filter((v) => v != null);
    const first = thirdMean(p99s, 'first');
    const last = thirdMean(p99s, 'last');
    const rssFirst = s.samples[0]?.rssMB;
    const rssLast = s.samples.at(-1)?.rssMB;
    const rssMax = Math.max(...s.samples.map((x) => x.rssMB ?? 0));
    s.trend = { p99FirstThird: first, p99LastThird: last, ratio: last / first, rssStart: s.rssStartMB, rssFirstSlice: rssFirst, rssLastSlice: rssLast, rssMax, rssGrowthMB: rssLast - rssFirst };
    verdict(`${c}: rate held`, s.sentRate >= TARGETS.minRateShare * OPTS.sustainedRate && s.ok >= TARGETS.minRateShare * OPTS.sustainedRate * OPTS.sustainedSec, `${f1(s.sentRate)} req/s sent, ${int(s.ok)} answered 200 of ${int(s.sent)}`);
    const lastSlice = s.samples.at(-1);
    verdict(
      `${c}: the gateway kept up (answers in flight at the end of each slice after the first <= ${TARGETS.maxInFlightShare * 1000} ms of load)`,
      s.samples.slice(1).every((x) => x.inFlight <= TARGETS.maxInFlightShare * OPTS.sustainedRate),
      `in flight at slice ends: ${s.samples.map((x) => x.inFlight).join(', ')} (last ${lastSlice?.inFlight}); whole-phase p99 ${f2(s.latencyMs?.p99)} ms`,
    );
    verdict(`${c}: latency not rising (last-third p99 <= ${TARGETS.maxP99Growth}x first-third)`, last <= TARGETS.maxP99Growth * first, `p99 ${f2(first)} -> ${f2(last)} ms (${f2(last / first)}x; mean of the slice p99s of each third)`);
    verdict(`${c}: memory not rising (RSS growth <= ${TARGETS.maxRssGrowthMB} MB)`, rssLast - rssFirst <= TARGETS.maxRssGrowthMB, `RSS ${f1(rssFirst)} -> ${f1(rssLast)} MB (${signed(rssLast - rssFirst, 1)} MB from the first to the last slice; max ${f1(rssMax)}, ${f1(s.rssStartMB)} before the warm-up)`);
    verdict(`${c}: every answered request recorded, chain verified`, a ? a.ok : false, a ? `${int(a.sql)} / ${int(a.expected)} records, verify ${a.verify?.ok ? 'ok' : JSON.stringify(a.verify?.problem ?? a.verify)}` : 'not checked');
  }
  return { text: lines.join('\n'), verdicts };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = new Date();
  if (!PINNING) log('!! WARNING: processes are NOT pinned (no taskset or < 2 CPUs); figures are not comparable.');
  const results = { benchmark: 'governance-overhead', startedAt: started.toISOString(), options: OPTS, machine: machineInfo(), git: gitInfo(), targets: TARGETS, configs: {}, sustained: {} };
  if (OPTS.build) buildChatgate();
  const mock = await startMock(OPTS.loadCore);
  log(`mock upstream on 127.0.0.1:${mock.port} (core ${OPTS.loadCore})`);
  const problems = [];

  const withGateway = async (config, fn) => {
    let gw = null;
    try {
      gw = await startChatgate(config, mock.port);
      log(`${config}: ${gw.base} (core ${OPTS.gatewayCore}, pid ${gw.pid})${gw.pg ? `, schema ${gw.pg.schema}` : ''}`);
      await preflight(gw);
      return await fn(gw);
    } finally {
      if (gw) {
        await stopChild(gw.child);
        const err = tail(gw.errFile, 10).trim();
        if (err) log(`  ${config} stderr (last lines):\n${err}`);
      }
    }
  };

  for (const c of OPTS.configs) {
    const entry = (results.configs[c] = {});
    try {
      await withGateway(c, async (gw) => {
        entry.measurements = await measureConfig(gw, mock.child.pid);
        if (gw.keyId) {
          const counter = await openCounter(backendOf(c) === 'sqlite' ? 'sqlite' : 'postgres', backendOf(c) === 'sqlite' ? gw.dataDir : gw.pg.url);
          await sleep(500);
          entry.audit = { sql: await counter.count(gw.keyId), verify: await admin(gw, '/admin/audit/verify') };
          await counter.close();
          if (!entry.audit.verify.ok) problems.push(`${c}: audit/verify not ok: ${JSON.stringify(entry.audit.verify)}`);
        }
      });
      for (const mode of OPTS.modes) {
        problems.push(...problemsOf(`${c} ${mode} loaded`, entry.measurements.loaded[mode]), ...problemsOf(`${c} ${mode} unloaded`, entry.measurements.unloaded[mode]));
      }
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
      problems.push(`${c}: NOT MEASURED: ${entry.error.split('\n')[0]}`);
      log(`\n!! ${c} could not be measured:\n${entry.error}\n`);
    }
  }

  if (OPTS.configs.some((c) => c.endsWith('-nojournal'))) {
    log('audit journal, in process: 50,000 appends, then 500 with fsync');
    results.journalMicro = await journalMicro().catch((err) => ({ error: err instanceof Error ? err.message : String(err) }));
  }

  for (const c of OPTS.sustainedConfigs) {
    try {
      results.sustained[c] = await withGateway(c, (gw) => sustained(gw, mock.child.pid));
      problems.push(...problemsOf(`${c} sustained`, results.sustained[c]));
      const a = results.sustained[c].audit;
      if (a && !a.ok) problems.push(`${c} sustained: audit count/verify failed: ${a.sql} (SQL) / ${a.api} (API) of ${a.expected}, verify ${JSON.stringify(a.verify)}`);
    } catch (err) {
      results.sustained[c] = { error: err instanceof Error ? err.message : String(err) };
      problems.push(`${c} sustained: NOT MEASURED: ${results.sustained[c].error.split('\n')[0]}`);
      log(`\n!! ${c} sustained could not be measured:\n${results.sustained[c].error}\n`);
    }
  }
  await stopChild(mock.child);
  await dropSchemas().catch((err) => log(`!! could not drop the PostgreSQL schemas: ${err.message}`));

  const rep = report(results);
  results.verdicts = rep.verdicts;
  results.problems = problems;
  results.finishedAt = new Date().toISOString();
  console.log(rep.text);
  console.log('');
  if (problems.length) {
    console.log('!'.repeat(78));
    console.log('!! THIS RUN HAD ERRORS: its figures are not valid as they stand');
    for (const p of problems) console.log(`!!   ${p}`);
    console.log('!'.repeat(78));
  } else {
    console.log('All requests answered 200 with a complete body; audit counts and chains verified.');
  }
  const outFile = OPTS.out || path.join(BENCH_DIR, 'results', `governance-overhead-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${path.relative(process.cwd(), outFile)}`);
  if (OPTS.keepTmp) console.log(`temp dir kept: ${TMP}`);
  return problems.length || rep.verdicts.some((v) => v.pass === false) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    console.error(err);
    killAll();
    await dropSchemas().catch(() => {});
    process.exitCode = 2;
  },
);
