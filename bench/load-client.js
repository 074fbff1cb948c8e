#!/usr/bin/env node
// Load-generating child of bench/gateway-overhead.js. The driver starts it pinned to core 1
// (`taskset -c 1 node bench/load-client.js '<json job>'`), it runs one job, prints
// `MEASURE_START` when the measured phase begins (after the warm-up; the driver samples CPU
// over that window) and one JSON line with the figures at the end, then exits.
//
// Jobs:
//   { "kind": "autocannon", url, body, headers, connections, durationSec, warmupSec }
//     autocannon (programmatic API) for warmupSec (discarded) then durationSec. Requests/s is
//     completed 2xx responses / measured seconds. autocannon's own latency histogram has 1 ms
//     resolution, so latencies of 2xx responses are also recorded here (float ms, from
//     autocannon's 'response' events) for the percentiles.
//   { "kind": "ttfb", url, body, headers, stream, connections, requests | durationSec,
//     warmupRequests }
//     an undici Pool with `connections` connections, each running requests back to back;
//     records per request the time from dispatch to the first response body byte (TTFB) and
//     to the end of the body (total), and checks every response: status 200 and a complete
//     body (a chat.completion JSON, or an SSE stream ending in `data: [DONE]`).

import { createRequire } from 'node:module';
import { Pool } from 'undici';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');

const job = JSON.parse(process.argv[2]);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : null,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

class Samples {
  constructor(initial = 1 << 16) {
    this.buf = new Float64Array(initial);
    this.n = 0;
  }
  push(v) {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  values() {
    return this.buf.subarray(0, this.n);
  }
}

function runAutocannon(opts, onResponse) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    if (onResponse) instance.on('response', onResponse);
  });
}

async function autocannonJob() {
  const base = {
    url: job.url,
    method: 'POST',
    headers: job.headers,
    body: job.body,
    connections: job.connections,
    pipelining: 1,
    timeout: 10,
  };
  if (job.warmupSec > 0) await runAutocannon({ ...base, duration: job.warmupSec });
  const lat = new Samples();
  process.stdout.write('MEASURE_START\n');
  const t0 = process.hrtime.bigint();
  const result = await runAutocannon({ ...base, duration: job.durationSec }, (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) lat.push(responseTime);
  });
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const seconds = result.duration || wallSec;
  return {
    kind: 'autocannon',
    connections: job.connections,
    durationSec: seconds,
    requests2xx: result['2xx'],
    requestsTotal: result.requests.total,
    rps: result['2xx'] / seconds,
    rpsSampleMean: result.requests.average,
    latencyMs: summarize(lat.values()),
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    resets: result.resets,
    statusCodeStats: result.statusCodeStats,
    throughputBytesPerSec: result.throughput.average,
  };
}

function checkBody(text, stream) {
  if (stream) return text.endsWith('data: [DONE]\n\n') && text.includes('"chat.completion.chunk"');
  return text.includes('"chat.completion"') && text.trimEnd().endsWith('}');
}

async function ttfbJob() {
  const url = new URL(job.url);
  const pool = new Pool(url.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const path = url.pathname + url.search;
  const headers = job.headers;
  const body = job.body;
  const stream = job.stream;
  const ttfb = new Samples();
  const total = new Samples();
  const counts = { ok: 0, non2xx: 0, errors: 0, badBody: 0 };
  const statusCodes = {};
  const errorMessages = {};
  let record = false;

  function one() {
    return new Promise((resolve) => {
      let start = 0n;
      let first = 0n;
      let status = 0;
      const parts = [];
      start = process.hrtime.bigint();
      pool.dispatch(
        { method: 'POST', path, headers, body },
        {
          onRequestStart() {},
          onResponseStart(_c, statusCode) {
            status = statusCode;
          },
          onResponseData(_c, chunk) {
            if (first === 0n) first = process.hrtime.bigint();
            parts.push(chunk);
          },
          onResponseEnd() {
            const end = process.hrtime.bigint();
            if (record) {
              statusCodes[status] = (statusCodes[status] || 0) + 1;
              if (status !== 200) counts.non2xx++;
              else if (!checkBody(Buffer.concat(parts).toString(), stream)) counts.badBody++;
              else {
                counts.ok++;
                ttfb.push(Number((first || end) - start) / 1e6);
                total.push(Number(end - start) / 1e6);
              }
            }
            resolve();
          },
          onResponseError(_c, err) {
            if (record) {
              counts.errors++;
              const key = err.code || err.message;
              errorMessages[key] = (errorMessages[key] || 0) + 1;
            }
            resolve();
          },
        },
      );
    });
  }

  async function loop(deadline, quota) {
    while (true) {
      if (deadline !== null && process.hrtime.bigint() >= deadline) return;
      if (quota !== null && quota.left-- <= 0) return;
      await one();
    }
  }

  async function phase({ requests, durationSec }) {
    const deadline = durationSec ? process.hrtime.bigint() + BigInt(Math.round(durationSec * 1e9)) : null;
    const quota = requests ? { left: requests } : null;
    const loops = [];
    for (let i = 0; i < job.connections; i++) loops.push(loop(deadline, quota));
    await Promise.all(loops);
  }

  // Warm-up (connections opened, JIT warm on every side), not recorded.
  await phase(job.warmupSec ? { durationSec: job.warmupSec } : { requests: job.warmupRequests ?? 200 });
  record = true;
  process.stdout.write('MEASURE_START\n');
  const t0 = process.hrtime.bigint();
  await phase(job.durationSec ? { durationSec: job.durationSec } : { requests: job.requests });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await pool.close();
  return {
    kind: 'ttfb',
    connections: job.connections,
    stream,
    durationSec: seconds,
    rps: counts.ok / seconds,
    ttfbMs: summarize(ttfb.values()),
    totalMs: summarize(total.values()),
    ...counts,
    statusCodes,
    errorMessages,
  };
}

try {
  const out = job.kind === 'autocannon' ? await autocannonJob() : await ttfbJob();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ kind: job.kind, fatal: String(err && err.stack ? err.stack : err) })}\n`);
  process.exit(1);
}
