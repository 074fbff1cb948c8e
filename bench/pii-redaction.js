#!/usr/bin/env node
// PII redaction benchmark (`npm run bench:pii`). See bench/README.md.
//
// In one run:
//   1. throughput: the redaction engine alone (test/support/pii-sample.ts, built to build/) on a ~4,000-token prompt
//      (about 16 KB of prose, code and logs in four languages with PII sprinkled in): MB/s and
//      milliseconds per prompt, pseudonymize (detect + placeholders);
//   2. added latency: one `chatgate serve` with two mock models, `plain` (pii policy off) and
//      `redacted` (pii policy pseudonymize), the same 4,000-token chat request sent to each,
//      sequentially on one keep-alive connection, interleaved in rounds; client latency to the
//      last byte and the server time of exactly those requests (the audit log's duration_ms,
//      each batch tagged by its `user` field); added = redacted - plain.
//
//   node bench/pii-redaction.js [--rounds 5] [--requests 200] [--iterations 100] [--no-build]
//
// Chatgate is pinned to core 0 and this driver to core 1 when taskset is available.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { ROOT, PINNING, killAll, log, machineInfo, gitInfo, startChatgateServe, stopChild, summarize, f2 } from './harness.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
    requests: { type: 'string', default: process.env.BENCH_REQUESTS ?? '200' },
    iterations: { type: 'string', default: process.env.BENCH_ITERATIONS ?? '100' },
    'no-build': { type: 'boolean', default: process.env.BENCH_NO_BUILD === '1' },
  },
});
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const iterations = Number(values.iterations);
const MASTER = 'sk-bench-pii';

if (PINNING) spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
if (!values['no-build']) {
  for (const script of ['build', 'build:support']) {
    log(`building Chatgate (npm run ${script}) ...`);
    const built = spawnSync('npm', ['run', script], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) process.exit(2);
  }
}

const piiSample = path.join(ROOT, 'build/test/support/pii-sample.js');
if (!fs.existsSync(piiSample)) {
  console.error(`${piiSample} is missing: run npm run build:support`);
  process.exit(2);
}
const { measureThroughput, samplePrompt } = await import(piiSample);

// 1. Throughput of the engine alone.
measureThroughput({ iterations: 10 }); // warm-up (JIT, libphonenumber metadata)
const throughput = measureThroughput({ iterations });
log(`engine: ${throughput.bytes} bytes per prompt, ${throughput.detections} detections, ${f2(throughput.msPerPrompt)} ms per prompt, ${f2(throughput.megabytesPerSecond)} MB/s`);

// 2. Added latency through the server.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-pii-bench-'));
const yaml = `log_level: warn
models:
  - name: plain
    provider: mock
  - name: redacted
    provider: mock
    pii:
      policy: pseudonymize
`;
let server;
let failures = 0;
const results = { plain: { client: [], server: [] }, redacted: { client: [], server: [] } };
try {
  server = await startChatgateServe({ yaml, dir, core: 0, masterKey: MASTER });
  const dispatcher = new Agent({ connections: 1, pipelining: 1 });
  const prompt = samplePrompt();
  const send = async (model, user) => {
    const started = performance.now();
    const response = await request(`${server.base}/v1/chat/completions`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 16, user }),
    });
    const body = await response.body.text();
    const elapsed = performance.now() - started;
    if (response.statusCode !== 200 || !body.includes('chat.completion')) {
      failures += 1;
      if (failures <= 3) log(`request to ${model} failed: ${response.statusCode} ${body.slice(0, 200)}`);
    }
    return elapsed;
  };
  for (const model of ['plain', 'redacted']) for (let index = 0; index < 20; index += 1) await send(model, 'warmup');
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 === 0 ? ['plain', 'redacted'] : ['redacted', 'plain'];
    for (const model of order) {
      const user = `bench-${model}-${round}`;
      for (let index = 0; index < requests; index += 1) results[model].client.push(await send(model, user));
      log(`  round ${round + 1}/${rounds} ${model}: ${requests} requests`);
    }
  }
  // Server time: the audit log's duration_ms of the measured requests (the writer flushes every ~100 ms).
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const model of ['plain', 'redacted']) {
    for (let round = 0; round < rounds; round += 1) {
      const response = await fetch(`${server.base}/admin/logs?user=bench-${model}-${round}&limit=1000`, { headers: { authorization: `Bearer ${MASTER}` } });
      const data = (await response.json()).data ?? [];
      if (data.length !== requests) {
        failures += 1;
        log(`audit records of ${model} round ${round + 1}: ${data.length}, expected ${requests}`);
      }
      for (const record of data) results[model].server.push(record.duration_ms);
    }
  }
} finally {
  if (server) await stopChild(server.child);
  killAll();
}

const rows = ['plain', 'redacted'].map((model) => ({ model, client: summarize(results[model].client), server: summarize(results[model].server) }));
const [plain, redacted] = rows;
console.log('\n== PII redaction ==');
console.log(`engine alone: ${f2(throughput.megabytesPerSecond)} MB/s, ${f2(throughput.msPerPrompt)} ms per ~4,000-token prompt (${throughput.bytes} bytes, ${throughput.detections} detections, ${iterations} iterations)`);
console.log('\nmodel     client p50  client p99  server p50  server p99   (ms, 4,000-token chat request, mock model)');
for (const row of rows) {
  console.log(`${row.model.padEnd(9)} ${f2(row.client.p50).padStart(10)}  ${f2(row.client.p99).padStart(10)}  ${f2(row.server.p50).padStart(10)}  ${f2(row.server.p99).padStart(10)}`);
}
console.log(`added by pseudonymize: client p50 +${f2(redacted.client.p50 - plain.client.p50)} ms, p99 +${f2(redacted.client.p99 - plain.client.p99)} ms; server p50 +${f2(redacted.server.p50 - plain.server.p50)} ms, p99 +${f2(redacted.server.p99 - plain.server.p99)} ms`);
const out = path.join(ROOT, 'bench', 'results', `pii-redaction-${new Date().toISOString().replaceAll(':', '-')}.json`);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ benchmark: 'pii-redaction', machine: machineInfo(), git: gitInfo(), rounds, requests, throughput, rows, failures }, null, 2));
console.log(`results: ${out}`);
fs.rmSync(dir, { recursive: true, force: true });
if (failures > 0) {
  console.log(`${failures} failures`);
  process.exit(1);
}
