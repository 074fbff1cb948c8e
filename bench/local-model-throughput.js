#!/usr/bin/env node
// Local-model throughput benchmark (`npm run bench:llama`). See bench/README.md.
//
// Generates a random-weight llama GGUF model (~42M parameters by default, f16, EOS and
// <|im_end|> biased away so that every stream produces exactly --max-tokens tokens), then, in
// one run, serves it two ways and drives both with the same streamed chat requests:
//   direct    node-llama-cpp in a child process (bench/llama-direct-worker.js), set up as
//             Chatgate's llama-cpp provider sets it up (one context, `sequences: parallel`,
//             same context size and threads, LlamaChat with the model's chat template, same
//             sampling, clearHistory after each request);
//   chatgate  `node bin/chatgate.js serve` with the model as a llama-cpp model (parallel 8,
//             preload, auth and log_level info), streamed /v1/chat/completions over HTTP
//             (undici, stream_options.include_usage for the token count).
// For 1, 2, 4 and 8 concurrent streams: aggregate tokens/s; for 1 stream: tokens/s and time to
// first token (TTFT). The two targets are measured alternately (never at the same time), cell
// by cell, for several rounds; the report gives medians and spread. Targets (from the issue):
// one stream through Chatgate >= 90% of direct; Chatgate's 4-stream aggregate >= 1.8 x its
// 1-stream aggregate. Raw figures go to bench/results/local-model-throughput-<ts>.json.
//
//   node bench/local-model-throughput.js [--rounds 3] [--max-tokens 128] [--concurrency 1,2,4,8]
//        [--requests-per-stream 2] [--tensor-type f16|f32] [--embedding 512] [--blocks 10]
//        [--ffn 2048] [--heads 8] [--context 1024] [--threads N] [--targets direct,chatgate]
//        [--quick] [--no-build] [--wait-idle S] [--out FILE] [--keep-tmp] [--model FILE]
//        [--direct-batching-patch]
//
// Every flag also reads an environment variable: BENCH_ROUNDS, BENCH_MAX_TOKENS,
// BENCH_CONCURRENCY, BENCH_REQUESTS_PER_STREAM, BENCH_TENSOR_TYPE, BENCH_EMBEDDING,
// BENCH_BLOCKS, BENCH_FFN, BENCH_HEADS, BENCH_CONTEXT, BENCH_THREADS, BENCH_TARGETS,
// BENCH_QUICK=1, BENCH_NO_BUILD=1, BENCH_WAIT_IDLE, BENCH_OUT, BENCH_KEEP_TMP=1, BENCH_MODEL,
// BENCH_DIRECT_BATCHING_PATCH=1.
//
// --quick: 1 round, 1 request per stream (about 1.5 minutes).
// --threads N: llama.cpp threads for both sides (default os.availableParallelism(), as Chatgate).
// --model FILE: use this GGUF file instead of generating one (the size flags are then ignored).
// --direct-batching-patch: investigation only, NOT a like-for-like comparison: the direct side
// runs node-llama-cpp with bench/llama-batching-patch.js (every generating sequence gets into
// each decode batch); the report says so in a warning line.
// --wait-idle S: before each cell wait up to S s (default 20) for the machine to be quiet;
// cells during which processes outside the benchmark used > 10% of a core are flagged.
// Exit code: 0 ok (whatever the verdicts), 1 a request failed or a target was not measured,
// 2 the harness failed.

import { argFlag, argValue, opt, printHelpIfAsked } from './flags.js';
import { fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { cleanUpOnExit, f1, f2, freePort, killAll, log, pct, sleep, stopChild, table, track } from './harness.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const NODE = process.execPath;

// ---------------------------------------------------------------------------------------------
// Options

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);

const NCPU = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
const QUICK = argFlag('quick', 'BENCH_QUICK');
const OPTS = {
  rounds: Number(opt('rounds', 'BENCH_ROUNDS', QUICK ? 1 : 3)),
  maxTokens: Number(opt('max-tokens', 'BENCH_MAX_TOKENS', 128)),
  concurrency: String(opt('concurrency', 'BENCH_CONCURRENCY', '1,2,4,8')).split(',').map(Number).filter((n) => n > 0),
  requestsPerStream: Number(opt('requests-per-stream', 'BENCH_REQUESTS_PER_STREAM', QUICK ? 1 : 2)),
  tensorType: String(opt('tensor-type', 'BENCH_TENSOR_TYPE', 'f16')),
  embedding: Number(opt('embedding', 'BENCH_EMBEDDING', 512)),
  blocks: Number(opt('blocks', 'BENCH_BLOCKS', 10)),
  ffn: Number(opt('ffn', 'BENCH_FFN', 2048)),
  heads: Number(opt('heads', 'BENCH_HEADS', 8)),
  context: Number(opt('context', 'BENCH_CONTEXT', 1024)),
  threads: Number(opt('threads', 'BENCH_THREADS', NCPU)),
  targets: String(opt('targets', 'BENCH_TARGETS', 'direct,chatgate')).split(',').map((s) => s.trim()).filter(Boolean),
  build: !argFlag('no-build', 'BENCH_NO_BUILD'),
  waitIdleSec: Number(opt('wait-idle', 'BENCH_WAIT_IDLE', 20)),
  out: opt('out', 'BENCH_OUT', ''),
  keepTmp: argFlag('keep-tmp', 'BENCH_KEEP_TMP'),
  model: opt('model', 'BENCH_MODEL', ''),
  directBatchingPatch: argFlag('direct-batching-patch', 'BENCH_DIRECT_BATCHING_PATCH'),
  quick: QUICK,
};
const PARALLEL = Math.max(8, ...OPTS.concurrency);
for (const t of OPTS.targets) if (!['direct', 'chatgate'].includes(t)) die(`unknown target "${t}" (direct, chatgate)`);
if (!['f16', 'f32'].includes(OPTS.tensorType)) die('--tensor-type is f16 or f32');

const TARGETS = { minSingleStreamRatio: 0.9, minScaling4: 1.8 };
const TEMPERATURE = 1; // OpenAI's default, what Chatgate uses when the request sets none
const PROMPTS = [
  'Tell me a long story about the world and everything in it.',
  'Write a detailed answer: what is the meaning of hello and yes and no?',
  'Explain, step by step, how the assistant should answer the user.',
  'List the things of the world, one per line, and say why each is there.',
  'Describe a quiet morning in a small town, in many words.',
  'Give me a long answer to the question of the world and of the user.',
  'Summarize everything you know about the answer, then expand on it.',
  'Write a letter to the world from the assistant, as long as you can.',
];

// ---------------------------------------------------------------------------------------------
// Helpers

function die(msg) {
  console.error(`local-model-throughput: ${msg}`);
  process.exit(2);
}
const median = (xs) => {
  const v = xs.filter((x) => x != null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const quantile = (xs, q) => {
  const v = xs.filter((x) => x != null).sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : null;
};

var TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-llama-bench-')); // var: read by the exit handler
cleanUpOnExit({ dir: () => TMP, keep: OPTS.keepTmp });
function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// CPU accounting from /proc: per process (all threads) and the whole machine, in seconds.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
function procCpuSec(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}
function machineBusySec() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.split(/\s+/).slice(1).map(Number);
    return (v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3] - (v[4] || 0) - (v[7] || 0)) / CLK_TCK;
  } catch {
    return null;
  }
}
function cpuSnapshot(pids) {
  return { t: performance.now(), busy: machineBusySec(), procs: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuSec(pid)])) };
}
// Cores' worth of CPU per second of wall time: per process, the machine, and "foreign" (the
// machine minus our processes: builds, tests, editors of other people on a shared machine).
function cpuDelta(a, b) {
  const wall = (b.t - a.t) / 1000;
  const procs = {};
  for (const k of Object.keys(b.procs)) procs[k] = a.procs[k] == null || b.procs[k] == null ? null : (b.procs[k] - a.procs[k]) / wall;
  const machine = a.busy == null || b.busy == null ? null : (b.busy - a.busy) / wall;
  const ours = Object.values(procs).reduce((s, v) => s + (v ?? 0), 0);
  return { wallSec: wall, machine, procs, foreign: machine == null ? null : Math.max(0, machine - ours) };
}
const FOREIGN_LIMIT = 0.1;
let idleWaitTotalSec = 0;
async function waitIdle() {
  if (!(OPTS.waitIdleSec > 0)) return;
  const t0 = Date.now();
  let warned = false;
  while (Date.now() - t0 < OPTS.waitIdleSec * 1000) {
    const a = cpuSnapshot({ driver: process.pid });
    await sleep(300);
    const d = cpuDelta(a, cpuSnapshot({ driver: process.pid }));
    if (d.foreign == null || d.foreign < FOREIGN_LIMIT) break;
    if (!warned && Date.now() - t0 > 1500) {
      log(`    (waiting up to ${OPTS.waitIdleSec} s for the machine to be quiet: other processes use ${pct(d.foreign)} of a core)`);
      warned = true;
    }
  }
  idleWaitTotalSec += (Date.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
// The model

async function makeModel() {
  if (OPTS.model) return { path: path.resolve(OPTS.model), generated: false };
  const lib = path.join(ROOT, 'build', 'test', 'support', 'tiny-gguf.js');
  if (!fs.existsSync(lib)) throw new Error(`${lib} is missing: run npm run build:support`);
  const { writeTinyGguf, TINY_TOKEN_IDS } = await import(pathToFileURL(lib).href);
  const options = {
    seed: 20261126,
    tensorType: OPTS.tensorType,
    contextLength: OPTS.context,
    embeddingLength: OPTS.embedding,
    blockCount: OPTS.blocks,
    feedForwardLength: OPTS.ffn,
    headCount: OPTS.heads,
    headCountKv: OPTS.heads,
    name: 'chatgate-bench-synthetic',
    // Never stop early: every request produces exactly max_tokens tokens, on both sides.
    logitBias: { [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 },
  };
  const file = path.join(TMP, `synthetic-${OPTS.tensorType}.gguf`);
  const t0 = performance.now();
  const written = await writeTinyGguf(file, options);
  const d = OPTS.embedding;
  const nVocab = 398;
  const params = OPTS.blocks * (4 * d * d + 3 * d * OPTS.ffn + 2 * d) + 2 * nVocab * d + d;
  return { path: file, generated: true, options, params, bytes: written.bytes, genMs: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------
// Direct: node-llama-cpp in a child process

async function startDirect(modelPath) {
  const patch = pathToFileURL(path.join(BENCH_DIR, 'llama-batching-patch.js')).href;
  const execArgv = OPTS.directBatchingPatch
    ? ['--import', `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(patch)})`]
    : [];
  const child = track(
    fork(path.join(BENCH_DIR, 'llama-direct-worker.js'), [], {
      cwd: ROOT,
      execArgv,
      env: { ...process.env, CHATGATE_BENCH_BATCHING_PATCH: OPTS.directBatchingPatch ? '1' : '0' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  let next = 0;
  const pending = new Map();
  child.on('message', (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.type === 'error') p.reject(new Error(`direct worker: ${m.message}`));
    else p.resolve(m);
  });
  child.on('exit', (code, sig) => {
    for (const p of pending.values()) p.reject(new Error(`direct worker exited (${sig || code})`));
    pending.clear();
  });
  const call = (msg) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      child.send({ ...msg, id });
    });
  const loaded = await call({ type: 'load', modelPath, contextSize: OPTS.context, parallel: PARALLEL, threads: OPTS.threads, gpuLayers: 0 });
  return {
    name: 'direct',
    pid: child.pid,
    child,
    loaded,
    async run(concurrency, seed) {
      const r = await call({
        type: 'run',
        concurrency,
        requestsPerStream: OPTS.requestsPerStream,
        maxTokens: OPTS.maxTokens,
        prompts: PROMPTS,
        seed,
        temperature: TEMPERATURE,
      });
      return { wallMs: r.wallMs, batchSizes: r.batchSizes, requests: r.requests.map((q) => ({ ...q, ok: true })) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Chatgate over HTTP

const MASTER_KEY = `bench-${randomBytes(12).toString('hex')}`;

function buildChatgate() {
  for (const script of ['build', 'build:support']) {
    log(`building Chatgate (npm run ${script}) ...`);
    const r = spawnSync('npm', ['run', script], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run ${script} failed (exit ${r.status})\n${(r.stdout || '').slice(-3000)}${(r.stderr || '').slice(-2000)}`);
  }
}

async function startChatgate(modelPath) {
  const entry = path.join(ROOT, 'bin', 'chatgate.js');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/cli/main.js is missing: Chatgate is not built (npm run build)');
  const dataDir = fs.mkdtempSync(path.join(TMP, 'data-'));
  const config = path.join(TMP, 'chatgate.yaml');
  fs.writeFileSync(
    config,
    [
      'log_level: info',
      'models:',
      '  - name: bench-llama',
      '    provider: llama-cpp',
      `    path: ${JSON.stringify(modelPath)}`,
      `    parallel: ${PARALLEL}`,
      `    context_size: ${OPTS.context}`,
      `    threads: ${OPTS.threads}`,
      '    gpu_layers: 0',
      '    preload: true',
      '    idle_unload_seconds: 0',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const logFile = path.join(TMP, 'chatgate.stdout.log');
  const errFile = path.join(TMP, 'chatgate.stderr.log');
  const outFd = fs.openSync(logFile, 'w');
  const errFd = fs.openSync(errFile, 'w');
  const child = track(
    spawn(NODE, [entry, 'serve', '--config', config, '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir], {
      cwd: TMP,
      stdio: ['ignore', outFd, errFd],
      env: { ...process.env, CHATGATE_MASTER_KEY: MASTER_KEY },
    }),
  );
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  let exited = null;
  child.on('exit', (code, sig) => {
    exited = sig || code;
  });
  const t0 = performance.now();
  const deadline = Date.now() + 60_000;
  const base = `http://127.0.0.1:${port}`;
  while (Date.now() < deadline && exited === null) {
    try {
      const r = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {}
    await sleep(100);
  }
  if (exited !== null || Date.now() >= deadline) {
    await stopChild(child);
    throw new Error(`Chatgate did not start${exited !== null ? ` (it exited: ${exited})` : ''}\n--- stderr ---\n${tail(errFile)}\n--- stdout ---\n${tail(logFile)}`);
  }
  const agent = new Agent({ connections: PARALLEL * 2, keepAliveTimeout: 60_000, pipelining: 1 });
  const target = {
    name: 'chatgate',
    pid: child.pid,
    child,
    logFile,
    errFile,
    startMs: performance.now() - t0,
    async run(concurrency, seed) {
      const t = performance.now();
      const streams = Array.from({ length: concurrency }, async (_, s) => {
        const out = [];
        for (let r = 0; r < OPTS.requestsPerStream; r++) {
          const prompt = PROMPTS[(s + r * concurrency) % PROMPTS.length];
          out.push(await streamChat(base, agent, prompt, seed + s * 1000 + r, t));
        }
        return out;
      });
      const requests = (await Promise.all(streams)).flat();
      return { wallMs: performance.now() - t, requests };
    },
  };
  // Preload: the first request would otherwise pay the model load. Wait until a request works.
  const first = await streamChat(base, agent, PROMPTS[0], 1, performance.now());
  if (!first.ok) throw new Error(`Chatgate's first request failed: ${first.error}\n--- stderr ---\n${tail(errFile)}`);
  return target;
}

// One streamed chat completion; times relative to `t0` (the start of the cell), in ms.
async function streamChat(base, agent, prompt, seed, t0) {
  const body = JSON.stringify({
    model: 'bench-llama',
    messages: [{ role: 'user', content: prompt }],
    max_tokens: OPTS.maxTokens,
    seed,
    stream: true,
    stream_options: { include_usage: true },
  });
  const startAt = performance.now();
  const res = { startAt: startAt - t0, firstAt: null, lastAt: null, endAt: null, ttftMs: null, totalMs: null, completionTokens: null, promptTokens: null, chunks: 0, finishReason: null, ok: false, error: null };
  try {
    const r = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body,
    });
    if (r.statusCode !== 200) {
      res.error = `HTTP ${r.statusCode}: ${(await r.body.text()).slice(0, 500)}`;
      return res;
    }
    let buf = '';
    let done = false;
    r.body.setEncoding('utf8');
    for await (const piece of r.body) {
      buf += piece;
      let i;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(`error frame: ${JSON.stringify(chunk.error).slice(0, 300)}`);
          const choice = chunk.choices?.[0];
          if (choice?.delta?.content) {
            const now = performance.now();
            if (res.firstAt === null) res.firstAt = now - t0;
            res.lastAt = now - t0;
            res.chunks++;
          }
          if (choice?.finish_reason) res.finishReason = choice.finish_reason;
          if (chunk.usage) {
            res.completionTokens = chunk.usage.completion_tokens;
            res.promptTokens = chunk.usage.prompt_tokens;
          }
        }
      }
    }
    const end = performance.now();
    res.endAt = end - t0;
    res.totalMs = end - startAt;
    res.ttftMs = res.firstAt === null ? null : res.firstAt - (startAt - t0);
    if (!done) res.error = 'the stream ended without data: [DONE]';
    else if (res.completionTokens == null) res.error = 'no usage chunk';
    else res.ok = true;
  } catch (error) {
    res.error = error instanceof Error ? error.message : String(error);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Measurement

function checkRequests(name, concurrency, result) {
  const problems = [];
  for (const q of result.requests) {
    if (!q.ok) problems.push(`${name} c=${concurrency}: request failed: ${q.error}`);
    else if (q.completionTokens !== OPTS.maxTokens) problems.push(`${name} c=${concurrency}: ${q.completionTokens} completion tokens instead of ${OPTS.maxTokens} (finish ${q.finishReason})`);
    else if (q.firstAt === null) problems.push(`${name} c=${concurrency}: no text received`);
  }
  return problems;
}

// Mean size of the decode batches that carry generated tokens (at most `concurrency` tokens):
// 1.0 means every sequence's token was decoded on its own, `concurrency` means perfect batching.
function meanGenerationBatch(sizes, concurrency) {
  if (!sizes) return null;
  let n = 0;
  let tokens = 0;
  for (const [size, count] of Object.entries(sizes)) {
    if (Number(size) > concurrency) continue;
    n += count;
    tokens += Number(size) * count;
  }
  return n ? tokens / n : null;
}

async function measureCell(target, concurrency, seed, pids) {
  await waitIdle();
  const a = cpuSnapshot(pids);
  const result = await target.run(concurrency, seed);
  const cpu = cpuDelta(a, cpuSnapshot(pids));
  const tokens = result.requests.reduce((s, q) => s + (q.completionTokens ?? 0), 0);
  const ok = result.requests.filter((q) => q.ok && q.firstAt !== null);
  return {
    concurrency,
    wallMs: result.wallMs,
    tokens,
    aggTokS: (tokens / result.wallMs) * 1000,
    // Per request: tokens over the whole request (what one user sees) and after the first token.
    e2eTokS: median(ok.map((q) => (q.completionTokens / q.totalMs) * 1000)),
    decodeTokS: median(ok.map((q) => (q.lastAt > q.firstAt ? ((q.completionTokens - 1) / (q.lastAt - q.firstAt)) * 1000 : null))),
    ttftMs: ok.map((q) => q.ttftMs),
    cpu,
    // CPU seconds the serving process used per generated token.
    cpuMsPerToken: cpu.procs.server == null ? null : ((cpu.procs.server * cpu.wallSec) / tokens) * 1000,
    disturbed: cpu.foreign != null && cpu.foreign > FOREIGN_LIMIT,
    problems: checkRequests(target.name, concurrency, result),
    // Direct only: decode batches of a few tokens (generation steps; prompt batches are larger).
    batchSizes: result.batchSizes ?? null,
    meanGenBatch: meanGenerationBatch(result.batchSizes, concurrency),
    requests: result.requests,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function summarize(results, onlyQuiet = false) {
  const s = {};
  for (const t of OPTS.targets) {
    const cells = results.cells.filter((c) => c.target === t && !(onlyQuiet && c.disturbed));
    const by = (n) => cells.filter((c) => c.concurrency === n);
    s[t] = {
      ttftP50: median(by(1).flatMap((c) => c.ttftMs)),
      ttftP90: quantile(by(1).flatMap((c) => c.ttftMs), 0.9),
      e2e1: median(by(1).map((c) => c.e2eTokS)),
      decode1: median(by(1).map((c) => c.decodeTokS)),
      agg: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.aggTokS))])),
      aggMin: Object.fromEntries(OPTS.concurrency.map((n) => [n, by(n).length ? Math.min(...by(n).map((c) => c.aggTokS)) : null])),
      aggMax: Object.fromEntries(OPTS.concurrency.map((n) => [n, by(n).length ? Math.max(...by(n).map((c) => c.aggTokS)) : null])),
      cpuMsPerToken: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.cpuMsPerToken))])),
      serverCores: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.cpu.procs.server))])),
      driverCores: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.cpu.procs.driver))])),
      foreign: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.cpu.foreign))])),
      meanGenBatch: Object.fromEntries(OPTS.concurrency.map((n) => [n, median(by(n).map((c) => c.meanGenBatch))])),
      disturbedCells: cells.filter((c) => c.disturbed).length,
      cells: cells.length,
    };
  }
  // Per round, paired ratios (the direct and chatgate cells of a round ran next to each other).
  const paired = [];
  for (let r = 0; r < OPTS.rounds; r++) {
    const get = (t, n) => results.cells.find((c) => c.round === r && c.target === t && c.concurrency === n);
    const d1 = get('direct', 1);
    const g1 = get('chatgate', 1);
    const g4 = get('chatgate', 4);
    const d4 = get('direct', 4);
    paired.push({
      round: r,
      single: d1 && g1 ? g1.e2eTokS / d1.e2eTokS : null,
      scaling4Chatgate: g1 && g4 ? g4.aggTokS / g1.aggTokS : null,
      scaling4Direct: d1 && d4 ? d4.aggTokS / d1.aggTokS : null,
    });
  }
  return { targets: s, paired };
}

function report(results, summary) {
  const lines = [];
  const say = (x = '') => lines.push(x);
  const m = results.machine;
  const mo = results.model;
  say(
    `Chatgate local-model throughput, ${results.startedAt} - git ${results.git.commit ?? '?'}${results.git.dirty ? ' (dirty)' : ''}, ` +
      `node ${m.node}, ${m.ncpu} x ${m.cpus}`,
  );
  if (mo.generated) {
    say(
      `model: synthetic llama, ${(mo.params / 1e6).toFixed(1)}M params, ${OPTS.tensorType}, d=${OPTS.embedding} blocks=${OPTS.blocks} ffn=${OPTS.ffn} heads=${OPTS.heads}, ` +
        `${(mo.bytes / 1e6).toFixed(0)} MB (generated in ${(mo.genMs / 1000).toFixed(1)} s), EOS suppressed`,
    );
  } else say(`model: ${mo.path}`);
  say(
    `both sides: 1 context, ${PARALLEL} sequences, context ${OPTS.context} per sequence, ${OPTS.threads} threads, CPU only; ` +
      `max_tokens ${OPTS.maxTokens}, temperature ${TEMPERATURE}, ${OPTS.rounds} round(s) x ${OPTS.requestsPerStream} request(s) per stream, alternating`,
  );
  if (OPTS.directBatchingPatch) say('!! direct runs with bench/llama-batching-patch.js, Chatgate without: NOT a like-for-like comparison');
  if (results.direct?.info) say(`direct: node-llama-cpp ${results.nodeLlamaCpp}, chat wrapper ${results.direct.info.chatWrapper}, batch ${results.direct.info.batchSize}`);
  say('');
  say('== Medians over rounds (tok/s = completion tokens per second) ==');
  const rows = [];
  for (const t of OPTS.targets) {
    const x = summary.targets[t];
    rows.push([
      t,
      f1(x.ttftP50),
      f1(x.ttftP90),
      f1(x.e2e1),
      f1(x.decode1),
      ...OPTS.concurrency.map((n) => f1(x.agg[n])),
      x.agg[1] && x.agg[4] ? `${f2(x.agg[4] / x.agg[1])}x` : '-',
      `${x.disturbedCells}/${x.cells}`,
    ]);
  }
  say(
    table(
      ['target', 'TTFT p50 ms', 'TTFT p90', '1-stream tok/s', '1-stream decode', ...OPTS.concurrency.map((n) => `agg@${n}`), 'agg@4/agg@1', 'disturbed'],
      rows,
      ['l'],
    ),
  );
  const quiet = results.quietSummary;
  if (quiet && Object.values(summary.targets).some((x) => x.disturbedCells > 0)) {
    say('');
    say('   The same, from the undisturbed cells only (- : none left):');
    say(
      table(
        ['target', 'TTFT p50 ms', 'TTFT p90', '1-stream tok/s', '1-stream decode', ...OPTS.concurrency.map((n) => `agg@${n}`), 'agg@4/agg@1', 'cells'],
        OPTS.targets.map((t) => {
          const x = quiet.targets[t];
          return [t, f1(x.ttftP50), f1(x.ttftP90), f1(x.e2e1), f1(x.decode1), ...OPTS.concurrency.map((n) => f1(x.agg[n])), x.agg[1] && x.agg[4] ? `${f2(x.agg[4] / x.agg[1])}x` : '-', x.cells];
        }),
        ['l'],
      ),
    );
  }
  say('   1-stream tok/s: tokens / whole request time (TTFT included); decode: after the first token.');
  say('   agg@N: all tokens of N concurrent streams / wall time of the cell.');
  say('');
  say('== Spread: aggregate tok/s min..max over rounds; CPU ==');
  const srows = [];
  for (const t of OPTS.targets) {
    const x = summary.targets[t];
    for (const n of OPTS.concurrency) {
      srows.push([
        t,
        n,
        `${f1(x.aggMin[n])}..${f1(x.aggMax[n])}`,
        f2(x.serverCores[n]),
        f2(x.cpuMsPerToken[n]),
        f2(x.driverCores[n]),
        f2(x.foreign[n]),
        f2(x.meanGenBatch[n]),
      ]);
    }
  }
  say(table(['target', 'streams', 'agg tok/s range', 'server cores', 'server CPU ms/token', 'client cores', 'foreign cores', 'tokens/decode'], srows, ['l']));
  say('   server: the direct worker or the Chatgate process (all threads); client: this driver (HTTP client');
  say(`   for chatgate); foreign: other processes on the machine (cells with > ${FOREIGN_LIMIT} are counted as disturbed).`);
  say('   tokens/decode (direct only): mean generated tokens per llama.cpp decode; N streams batch perfectly at N.');
  say('');
  say('== Paired per round ==');
  say(
    table(
      ['round', 'chatgate/direct 1-stream', 'chatgate agg@4/agg@1', 'direct agg@4/agg@1'],
      summary.paired.map((p) => [p.round + 1, pct(p.single), p.scaling4Chatgate == null ? '-' : `${f2(p.scaling4Chatgate)}x`, p.scaling4Direct == null ? '-' : `${f2(p.scaling4Direct)}x`]),
    ),
  );

  say('');
  say('== Targets ==');
  const verdicts = [];
  const verdict = (name, value, pass, detail) => {
    verdicts.push({ name, value, pass, detail });
    say(`  [${pass == null ? 'n/a ' : pass ? 'PASS' : 'FAIL'}] ${name}: ${detail}`);
  };
  const d = summary.targets.direct;
  const g = summary.targets.chatgate;
  // The verdicts use every cell; with disturbed cells, the undisturbed-only value is added.
  const quietNote = (get) => {
    if (!quiet || !Object.values(summary.targets).some((x) => x.disturbedCells > 0)) return '';
    return `; undisturbed cells only: ${get(quiet.targets) ?? '-'}`;
  };
  const single = d && g && d.e2e1 ? g.e2e1 / d.e2e1 : null;
  verdict(
    `one stream through Chatgate >= ${pct(TARGETS.minSingleStreamRatio)} of direct`,
    single,
    single == null ? null : single >= TARGETS.minSingleStreamRatio,
    single == null
      ? 'not measured'
      : `${pct(single)} (median tok/s ${f1(g.e2e1)} vs ${f1(d.e2e1)}; decode only ${pct(g.decode1 / d.decode1)}; per round ${summary.paired.map((p) => pct(p.single)).join(', ')}` +
          `${quietNote((q) => (q.direct?.e2e1 && q.chatgate?.e2e1 ? pct(q.chatgate.e2e1 / q.direct.e2e1) : null))})`,
  );
  const scaling = g && g.agg[1] && g.agg[4] ? g.agg[4] / g.agg[1] : null;
  verdict(
    `Chatgate 4-stream aggregate >= ${TARGETS.minScaling4}x its 1-stream aggregate`,
    scaling,
    scaling == null ? null : scaling >= TARGETS.minScaling4,
    scaling == null
      ? 'not measured'
      : `${f2(scaling)}x (${f1(g.agg[4])} vs ${f1(g.agg[1])} tok/s; direct gets ${d && d.agg[1] && d.agg[4] ? `${f2(d.agg[4] / d.agg[1])}x` : '-'}` +
          `${quietNote((q) => (q.chatgate?.agg[1] && q.chatgate?.agg[4] ? `${f2(q.chatgate.agg[4] / q.chatgate.agg[1])}x` : null))})`,
  );
  return { text: lines.join('\n'), verdicts };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = new Date();
  log(
    `local-model-throughput: ${OPTS.rounds} round(s), concurrency ${OPTS.concurrency.join(',')}, ${OPTS.requestsPerStream} request(s) per stream, ` +
      `max_tokens ${OPTS.maxTokens}, ${OPTS.threads} threads${OPTS.quick ? ' (quick)' : ''}`,
  );
  const results = {
    benchmark: 'local-model-throughput',
    startedAt: started.toISOString(),
    options: OPTS,
    parallel: PARALLEL,
    targetsSpec: TARGETS,
    machine: { cpus: os.cpus()[0]?.model, ncpu: NCPU, node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg() },
    git: (() => {
      const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
      const d = spawnSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' });
      return { commit: r.stdout?.trim() || null, dirty: !!d.stdout?.trim() };
    })(),
    nodeLlamaCpp: JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version,
    cells: [],
    problems: [],
  };
  if (OPTS.build) buildChatgate();
  const model = await makeModel();
  results.model = { ...model };
  if (model.generated) log(`model: ${(model.params / 1e6).toFixed(1)}M params, ${(model.bytes / 1e6).toFixed(0)} MB, generated in ${(model.genMs / 1000).toFixed(1)} s`);

  const targets = {};
  if (OPTS.targets.includes('direct')) {
    targets.direct = await startDirect(model.path);
    results.direct = { loadMs: targets.direct.loaded.ms, info: targets.direct.loaded.info };
    log(`direct: worker pid ${targets.direct.pid}, loaded in ${(targets.direct.loaded.ms / 1000).toFixed(1)} s (${JSON.stringify(targets.direct.loaded.info)})`);
  }
  if (OPTS.targets.includes('chatgate')) {
    targets.chatgate = await startChatgate(model.path);
    results.chatgate = { startMs: targets.chatgate.startMs };
    log(`chatgate: pid ${targets.chatgate.pid}, ready in ${(targets.chatgate.startMs / 1000).toFixed(1)} s`);
  }
  const order = OPTS.targets.filter((t) => targets[t]);

  // Warm-up: 1 and the highest concurrency, once per target, not recorded.
  for (const t of order) {
    for (const n of [1, Math.max(...OPTS.concurrency)]) {
      const r = await targets[t].run(n, 7);
      const problems = checkRequests(t, n, r);
      if (problems.length) throw new Error(`warm-up failed:\n${problems.slice(0, 5).join('\n')}`);
    }
  }
  log('warm-up done');

  for (let round = 0; round < OPTS.rounds; round++) {
    for (const [i, n] of OPTS.concurrency.entries()) {
      const seq = (round + i) % 2 === 0 ? order : [...order].reverse();
      for (const t of seq) {
        const pids = { server: targets[t].pid, driver: process.pid };
        const cell = await measureCell(targets[t], n, 100 + round * 10_000 + n * 100, pids);
        results.cells.push({ round, target: t, ...cell });
        results.problems.push(...cell.problems);
        log(
          `  round ${round + 1}/${OPTS.rounds} ${t.padEnd(8)} c=${n}: agg ${f1(cell.aggTokS)} tok/s, 1-req ${f1(cell.e2eTokS)} tok/s, ` +
            `TTFT p50 ${f1(median(cell.ttftMs))} ms, server ${f2(cell.cpu.procs.server)} cores, foreign ${f2(cell.cpu.foreign)}` +
            `${cell.disturbed ? '  [disturbed]' : ''}${cell.problems.length ? `  !! ${cell.problems.length} problem(s)` : ''}`,
        );
      }
    }
  }

  for (const t of order) await stopChild(targets[t].child);
  if (targets.chatgate) {
    const err = tail(targets.chatgate.errFile, 200);
    if (/\b(error|fatal)\b/i.test(err)) results.chatgateStderrTail = err;
  }

  const summary = summarize(results);
  results.quietSummary = summarize(results, true);
  const rep = report(results, summary);
  results.summary = summary;
  results.verdicts = rep.verdicts;
  results.finishedAt = new Date().toISOString();
  results.idleWaitSec = idleWaitTotalSec;
  console.log(rep.text);
  console.log('');
  const missing = ['direct', 'chatgate'].filter((t) => !targets[t]);
  if (results.problems.length) {
    console.log('!'.repeat(78));
    console.log('!! THIS RUN HAD FAILED REQUESTS: its figures are not valid as they stand');
    for (const p of results.problems.slice(0, 20)) console.log(`!!   ${p}`);
    if (results.problems.length > 20) console.log(`!!   ... and ${results.problems.length - 20} more (see the JSON)`);
    console.log('!'.repeat(78));
  } else {
    console.log(`All ${results.cells.reduce((s, c) => s + c.requests.length, 0)} measured requests completed with exactly ${OPTS.maxTokens} tokens.`);
  }
  const disturbed = results.cells.filter((c) => c.disturbed);
  if (disturbed.length) {
    console.log(`!! ${disturbed.length} of ${results.cells.length} cells ran while other processes used > ${FOREIGN_LIMIT} of a core (see "foreign"):`);
    console.log('!! a busy 2-core machine slows llama.cpp far more than that share suggests; rerun on an idle machine.');
  }
  const outFile = OPTS.out || path.join(BENCH_DIR, 'results', `local-model-throughput-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  if (idleWaitTotalSec > 5) console.log(`(waited ${idleWaitTotalSec.toFixed(0)} s in all for other processes to leave the cores)`);
  console.log(`results: ${path.relative(process.cwd(), outFile)}`);
  if (OPTS.keepTmp) console.log(`temp dir kept: ${TMP}`);
  return results.problems.length || missing.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    killAll();
  },
  (err) => {
    console.error(err);
    killAll();
    process.exitCode = 2;
  },
);
