#!/usr/bin/env node
// Token-counting benchmark (`npm run bench:tokens`). See bench/README.md.
//
// Prints the time Chatgate's token counter (dist/tokens/token-counter.js) takes to count a text
// against its size, 1 KB, 4 KB, 16 KB ... 16 MB, for three kinds of text:
//   - normal: prose, code, JSON, markdown and several scripts, mixed;
//   - one-letter run: "aaaa…", a single word without spaces (the prompt that froze the server);
//   - random-letter run: a single word of random letters (the costliest run for BPE; up to
//     --max-random-mb, 4 MB by default, to keep the run short);
// with the time per MB at each size and, per kind, the ratio of the largest size's time per MB
// to the smallest's (linear ≈ 1; quadratic doubles it with every doubling of the size). Small
// sizes are repeated until 100 ms have passed and averaged.
//
// Baseline in the same run: gpt-tokenizer's own countTokens (what Chatgate used before), on
// normal text at every size and on the runs up to --max-baseline-kb (64 KB by default: it is
// quadratic on runs, 17 s at 160 KB).
//
// Event loop: the largest text of each kind is also counted with countAsync (what request
// handlers use) while a setImmediate chain measures the longest time the event loop went
// without a turn: the worst block a request's counting can cause.
//
//   node bench/token-counting.js [--max-mb 16] [--max-random-mb 4] [--max-baseline-kb 64]
//                                [--encoding cl100k_base|o200k_base] [--no-build]
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, buildOrWarn, f1, f2, gitInfo, log, machineInfo, table } from './harness.js';
import { argFlag, opt, printHelpIfAsked } from './flags.js';

printHelpIfAsked(new URL(import.meta.url).pathname, fs.readFileSync);

const maxMB = Number(opt('max-mb', 'BENCH_MAX_MB', '16'));
const maxRandomMB = Number(opt('max-random-mb', 'BENCH_MAX_RANDOM_MB', '4'));
const maxBaselineKB = Number(opt('max-baseline-kb', 'BENCH_MAX_BASELINE_KB', '64'));
const encoding = opt('encoding', 'BENCH_ENCODING', 'cl100k_base');
buildOrWarn(!argFlag('no-build', 'BENCH_NO_BUILD'));

const { TokenCounters } = await import(pathToFileURL(path.join(ROOT, 'dist/tokens/token-counter.js')).href);
const { mulberry32: seeded } = await import(pathToFileURL(path.join(ROOT, 'dist/util/seeded-random.js')).href);
const library = await import(`gpt-tokenizer/encoding/${encoding}`);
const counter = await new TokenCounters().get(encoding);
const plain = { disallowedSpecial: new Set() };

const KB = 1024;
const MB = 1024 * KB;
const sizes = [];
for (let size = KB; size <= maxMB * MB; size *= 4) sizes.push(size);

const SAMPLES = [
  'The quick brown fox jumps over the lazy dog. ',
  "It's what they'd've done, isn't it? I'll see; you're right. ",
  'function add(a, b) {\n  return a + b; // sum\n}\n\n',
  JSON.stringify({ id: 12345, name: 'widget', tags: ['a', 'b'], nested: { price: 9.99, ok: true } }),
  '# Title\n\n- item one\n- item two\n\n',
  'Grüße aus Köln, ça va? Ñandú. ',
  '日本語のテキストと漢字。中文也可以。 ',
  'Привет, мир! Как дела? ',
  'https://example.com/path?query=1&x=y#frag ',
  '1234567890 3.14159 -42 ',
];

function normalText(length) {
  const random = seeded(1);
  const parts = [];
  let total = 0;
  while (total < length) {
    // A varying number as well, so the text is not one sentence repeated.
    const part = SAMPLES[Math.floor(random() * SAMPLES.length)] + Math.floor(random() * 1e6) + ' ';
    parts.push(part);
    total += part.length;
  }
  return parts.join('').slice(0, length);
}

function randomRun(length) {
  const random = seeded(2);
  const codes = new Uint8Array(length);
  for (let index = 0; index < length; index++) codes[index] = 97 + Math.floor(random() * 26);
  return Buffer.from(codes).toString('latin1');
}

const kinds = [
  { name: 'normal', make: normalText, max: maxMB * MB, baselineMax: maxMB * MB },
  { name: 'one-letter run', make: (length) => 'a'.repeat(length), max: maxMB * MB, baselineMax: maxBaselineKB * KB },
  { name: 'random-letter run', make: randomRun, max: maxRandomMB * MB, baselineMax: maxBaselineKB * KB },
];

/**
 * Mean milliseconds of `work`, repeated until 100 ms have passed (at least once), each run
 * with gpt-tokenizer's merge cache cleared first: a repeated text would otherwise be served
 * from the cache, and small sizes (repeated most) would look cheaper than they are.
 */
function timeMs(work) {
  let runs = 0;
  let elapsed = 0;
  do {
    library.clearMergeCache();
    const started = performance.now();
    work();
    elapsed += performance.now() - started;
    runs++;
  } while (elapsed < 100);
  return elapsed / runs;
}

/** The longest stretch without an event-loop turn while `promise` runs. */
async function worstBlockMs(start) {
  let last = performance.now();
  let worst = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await start();
  running = false;
  await new Promise((resolve) => setImmediate(resolve));
  return { worst, result };
}

console.log(`# Token counting (${encoding}) — ${new Date().toISOString()}`);
console.log(JSON.stringify({ ...machineInfo(), ...gitInfo() }));
console.log('');

const summary = [];
for (const kind of kinds) {
  const rows = [];
  const perMB = [];
  const baselinePerMB = [];
  for (const size of sizes.filter((candidate) => candidate <= kind.max)) {
    const text = kind.make(size);
    timeMs(() => counter.count(text.slice(0, 64 * KB))); // warm up (JIT)
    const ms = timeMs(() => counter.count(text));
    const tokens = counter.count(text);
    let baselineMs = null;
    let exact = '';
    if (size <= kind.baselineMax) {
      if (size <= 64 * KB) timeMs(() => library.countTokens(text, plain)); // warm up (JIT)
      baselineMs = timeMs(() => library.countTokens(text, plain));
      const libraryTokens = library.countTokens(text, plain);
      exact = libraryTokens === tokens ? 'equal' : `${tokens - libraryTokens > 0 ? '+' : ''}${tokens - libraryTokens} (${f2(((tokens - libraryTokens) / libraryTokens) * 100)}%)`;
    }
    perMB.push(ms / (size / MB));
    if (baselineMs !== null) baselinePerMB.push([size, baselineMs / (size / MB)]);
    rows.push([
      size >= MB ? `${size / MB} MB` : `${size / KB} KB`,
      tokens.toLocaleString('en-US'),
      f2(ms),
      f1(ms / (size / MB)),
      baselineMs === null ? '-' : f2(baselineMs),
      baselineMs === null ? '-' : f2(baselineMs / ms),
      exact || '-',
    ]);
    log(`${kind.name} ${rows.at(-1)[0]}: ${f2(ms)} ms`);
  }
  const largest = kind.make(sizes.filter((candidate) => candidate <= kind.max).at(-1));
  library.clearMergeCache();
  const { worst } = await worstBlockMs(() => counter.countAsync(largest));
  const ratio = perMB.at(-1) / perMB[0];
  const at64KB = perMB[sizes.indexOf(64 * KB)];
  const [baselineLargest, baselineLargestPerMB] = baselinePerMB.at(-1);
  summary.push([
    kind.name,
    rows.at(-1)[0],
    f1(perMB[0]),
    at64KB === undefined ? '-' : f1(at64KB),
    f1(perMB.at(-1)),
    f2(ratio),
    at64KB === undefined ? '-' : f2(perMB.at(-1) / at64KB),
    `${f2(baselineLargestPerMB / baselinePerMB[0][1])} (${baselineLargest >= MB ? `${baselineLargest / MB} MB` : `${baselineLargest / KB} KB`})`,
    f1(worst),
  ]);
  console.log(`## ${kind.name}`);
  console.log(
    table(['size', 'tokens', 'ms', 'ms per MB', 'gpt-tokenizer ms', 'gpt-tokenizer / chatgate', 'count vs gpt-tokenizer'], rows, ['r', 'r', 'r', 'r', 'r', 'r', 'l']),
  );
  console.log('');
}

console.log('## Linearity and event loop');
console.log(
  table(
    [
      'text',
      'largest',
      'ms/MB at 1 KB',
      'ms/MB at 64 KB',
      'ms/MB at largest',
      'ratio largest / 1 KB',
      'ratio largest / 64 KB',
      'gpt-tokenizer ratio (up to)',
      'worst event-loop block in countAsync (ms)',
    ],
    summary,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ),
);
console.log('');
console.log('ratio: time per MB at the largest size over that at the smallest (or 64 KB, past the fixed cost of a call):');
console.log('about 1 or less is linear; quadratic counting multiplies it by the size ratio (gpt-tokenizer on runs).');
