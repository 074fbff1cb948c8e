#!/usr/bin/env node
// Local LoRA trainer throughput benchmark.
//
// Generates a random-weight llama GGUF model (f16, embedding 384, 4 blocks by default) and
// trains LoRA adapters on it (all seven target matrices, rank 8) with the built-in CPU trainer
// (dist/fine-tuning/local-trainer), several times over from the same initial adapter on the
// same batches: with the optimised kernels on one thread, with the plain reference kernels,
// and (with --threads N > 1) with the optimised kernels split over N threads. The variants are
// measured alternately, round by round (never at the same time), in this one process.
// Reports training throughput (input tokens through forward + backward per second, and
// loss-counted tokens per second) for each, the optimised/reference ratio (and the threaded/
// single-thread one), whether the variants gave the same losses, and the process's peak RSS.
// Raw figures go to bench/results/local-trainer-throughput-<ts>.json. Run it on a quiet
// machine: other processes on the same cores distort the figures (the threaded ones most).
//
//   node bench/local-trainer-throughput.js [--rounds 3] [--steps 2] [--batch 4] [--seq 128]
//        [--embedding 384] [--blocks 4] [--ffn 1024] [--heads 6] [--heads-kv 6] [--rank 8]
//        [--tensor-type f16|f32] [--threads N] [--quick] [--no-build] [--out FILE]
//
// Every flag also reads an environment variable: BENCH_ROUNDS, BENCH_STEPS, BENCH_BATCH,
// BENCH_SEQ, BENCH_EMBEDDING, BENCH_BLOCKS, BENCH_FFN, BENCH_HEADS, BENCH_HEADS_KV, BENCH_RANK,
// BENCH_TENSOR_TYPE, BENCH_THREADS, BENCH_QUICK=1, BENCH_NO_BUILD=1, BENCH_OUT.
//
// --threads N: also run the optimised kernels on N threads (default: the machine's cores; 1
// leaves the threaded variant out).
//
// --quick: 1 round of 1 step on a smaller model (embedding 256), to check that it works.
// Exit code: 0 ok, 1 the variants disagreed on a loss (> 1e-4), 2 the harness failed.

import { argFlag, argValue, opt, printHelpIfAsked } from './flags.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { f1, f2, gitInfo, log, machineInfo, table } from './harness.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');

printHelpIfAsked(fileURLToPath(import.meta.url), fs.readFileSync);

const QUICK = argFlag('quick', 'BENCH_QUICK');
const OPTS = {
  rounds: Number(opt('rounds', 'BENCH_ROUNDS', QUICK ? 1 : 3)),
  steps: Number(opt('steps', 'BENCH_STEPS', QUICK ? 1 : 2)),
  batch: Number(opt('batch', 'BENCH_BATCH', 4)),
  seq: Number(opt('seq', 'BENCH_SEQ', 128)),
  embedding: Number(opt('embedding', 'BENCH_EMBEDDING', QUICK ? 256 : 384)),
  blocks: Number(opt('blocks', 'BENCH_BLOCKS', 4)),
  ffn: Number(opt('ffn', 'BENCH_FFN', QUICK ? 688 : 1024)),
  heads: Number(opt('heads', 'BENCH_HEADS', QUICK ? 4 : 6)),
  headsKv: Number(opt('heads-kv', 'BENCH_HEADS_KV', QUICK ? 4 : 6)),
  rank: Number(opt('rank', 'BENCH_RANK', 8)),
  tensorType: opt('tensor-type', 'BENCH_TENSOR_TYPE', 'f16'),
  threads: Number(opt('threads', 'BENCH_THREADS', os.availableParallelism ? os.availableParallelism() : os.cpus().length)),
  build: !argFlag('no-build', 'BENCH_NO_BUILD'),
  out: opt('out', 'BENCH_OUT', undefined),
};

const VARIANTS = [
  { name: 'optimised', kernels: 'optimised', threads: 1 },
  { name: 'reference', kernels: 'reference', threads: 1 },
  ...(OPTS.threads > 1 ? [{ name: `optimised x${OPTS.threads} threads`, kernels: 'optimised', threads: OPTS.threads }] : []),
];
const KERNELS = VARIANTS.map((v) => v.name);

function build() {
  for (const script of ['build', 'build:support']) {
    log(`building Chatgate (npm run ${script}) ...`);
    const r = spawnSync('npm', ['run', script], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run ${script} failed (exit ${r.status})\n${(r.stdout || '').slice(-3000)}${(r.stderr || '').slice(-2000)}`);
  }
}

async function importDist(relative) {
  const file = path.join(ROOT, 'dist', relative);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build`);
  return import(pathToFileURL(file).href);
}

/** Deterministic batches of `seq`-token sequences; the second half of each is the "answer". */
function makeBatches(count, vocab) {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state;
  };
  const batches = [];
  for (let b = 0; b < count; b++) {
    const batch = [];
    for (let e = 0; e < OPTS.batch; e++) {
      const tokens = [1, ...Array.from({ length: OPTS.seq - 1 }, () => 261 + (next() % (vocab - 261)))];
      batch.push({ tokens, lossMask: tokens.map((_, i) => (i >= OPTS.seq / 2 ? 1 : 0)) });
    }
    batches.push(batch);
  }
  return batches;
}

async function main() {
  if (OPTS.build) build();
  const tinyGguf = path.join(ROOT, 'build', 'test', 'support', 'tiny-gguf.js');
  if (!fs.existsSync(tinyGguf)) throw new Error(`${tinyGguf} is missing: run npm run build:support`);
  const { writeTinyGguf } = await import(pathToFileURL(tinyGguf).href);
  const { LoraTrainer } = await importDist('fine-tuning/local-trainer/lora-trainer.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-bench-trainer-'));
  const results = {
    startedAt: new Date().toISOString(),
    git: gitInfo(),
    machine: machineInfo(),
    options: OPTS,
    rounds: [],
  };
  try {
    const modelPath = path.join(dir, 'model.gguf');
    const t0 = performance.now();
    const written = await writeTinyGguf(modelPath, {
      seed: 7, tensorType: OPTS.tensorType, embeddingLength: OPTS.embedding, blockCount: OPTS.blocks, feedForwardLength: OPTS.ffn,
      headCount: OPTS.heads, headCountKv: OPTS.headsKv, contextLength: Math.max(256, OPTS.seq),
    });
    log(`model: ${(written.bytes / 2 ** 20).toFixed(1)} MiB ${OPTS.tensorType}, embedding ${OPTS.embedding}, ${OPTS.blocks} blocks, ffn ${OPTS.ffn}, heads ${OPTS.heads}/${OPTS.headsKv} (written in ${f1((performance.now() - t0) / 1000)} s)`);

    const trainers = {};
    for (const { name, kernels, threads } of VARIANTS) {
      trainers[name] = await LoraTrainer.open({ modelPath, rank: OPTS.rank, alpha: 2 * OPTS.rank, learningRate: 1e-3, batchSize: OPTS.batch, seed: 3, kernels, threads });
    }
    const vocab = trainers.optimised.hyperparameters.vocabSize;
    const batches = makeBatches(OPTS.rounds * OPTS.steps, vocab);
    const inputTokensPerStep = OPTS.batch * (OPTS.seq - 1);
    let maxLossDiff = 0;

    for (let round = 0; round < OPTS.rounds; round++) {
      const order = round % 2 === 0 ? KERNELS : [...KERNELS].reverse();
      const cell = { round, losses: {} };
      for (const kernels of order) {
        const losses = [];
        let countedTokens = 0;
        const start = performance.now();
        for (let s = 0; s < OPTS.steps; s++) {
          const r = trainers[kernels].trainStep(batches[round * OPTS.steps + s]);
          losses.push(r.loss);
          countedTokens += r.tokens;
        }
        const seconds = (performance.now() - start) / 1000;
        cell[kernels] = { seconds, inputTokensPerSec: (OPTS.steps * inputTokensPerStep) / seconds, countedTokensPerSec: countedTokens / seconds };
        cell.losses[kernels] = losses;
        log(`round ${round + 1}/${OPTS.rounds} ${kernels.padEnd(24)} ${f2(seconds)} s, ${f1(cell[kernels].inputTokensPerSec)} tokens/s, losses ${losses.map((l) => l.toFixed(5)).join(' ')}`);
      }
      for (const kernels of KERNELS) {
        for (let s = 0; s < OPTS.steps; s++) maxLossDiff = Math.max(maxLossDiff, Math.abs(cell.losses[kernels][s] - cell.losses.optimised[s]));
      }
      results.rounds.push(cell);
    }
    const median = (values) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    const summary = {};
    for (const kernels of KERNELS) {
      summary[kernels] = {
        inputTokensPerSec: median(results.rounds.map((r) => r[kernels].inputTokensPerSec)),
        countedTokensPerSec: median(results.rounds.map((r) => r[kernels].countedTokensPerSec)),
      };
    }
    summary.ratio = summary.optimised.inputTokensPerSec / summary.reference.inputTokensPerSec;
    const threaded = KERNELS[2];
    if (threaded) summary.threadedRatio = summary[threaded].inputTokensPerSec / summary.optimised.inputTokensPerSec;
    summary.maxLossDiff = maxLossDiff;
    summary.peakRssMB = process.resourceUsage().maxRSS / 1024;
    results.summary = summary;

    console.log(`\nChatgate local LoRA trainer throughput, ${results.startedAt} - git ${results.git.commit ?? '?'}${results.git.dirty ? ' (dirty)' : ''}, ${results.machine.cpus}`);
    console.log(
      `model ${OPTS.tensorType} embedding ${OPTS.embedding} x ${OPTS.blocks} blocks, ffn ${OPTS.ffn}, heads ${OPTS.heads}/${OPTS.headsKv}, vocab ${vocab}; ` +
        `LoRA rank ${OPTS.rank} on 7 targets; batch ${OPTS.batch} x ${OPTS.seq} tokens (half counted); ${OPTS.rounds} rounds x ${OPTS.steps} steps (medians)`,
    );
    console.log(
      table(
        ['kernels', 'tokens/s (fwd+bwd)', 'counted tokens/s'],
        KERNELS.map((k) => [k, f1(summary[k].inputTokensPerSec), f1(summary[k].countedTokensPerSec)]),
        ['l', 'r', 'r'],
      ),
    );
    if (threaded) console.log(`${threaded} / optimised (1 thread): ${f2(summary.threadedRatio)}x`);
    console.log(`optimised / reference: ${f2(summary.ratio)}x; max loss difference ${maxLossDiff.toExponential(2)}; peak RSS ${f1(summary.peakRssMB)} MB`);

    const outFile = OPTS.out ?? path.join(BENCH_DIR, 'results', `local-trainer-throughput-${results.startedAt.replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
    log(`raw figures: ${path.relative(ROOT, outFile)}`);
    for (const trainer of Object.values(trainers)) await trainer.close();
    return maxLossDiff > 1e-4 ? 1 : 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error?.stack ?? error);
    process.exit(2);
  },
);
