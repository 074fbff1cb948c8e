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
//     body (a chat.completion JSON, or an SSE stream ending in `data: [DONE]`). Optional:
//     warmupBody (the body of the warm-up requests, default body), expectHeaders
//     ({ name: value | null }: every measured response must carry that header value, or not
//     carry the header when null; others count as badHeader), keepSamples (return every
//     measured request's ttfb/total ms in `samples`, rounded to the µs).
//   { "kind": "paced", url, body, headers, stream, rate, durationSec, warmupSec, sliceSec,
//     connections }
//     open-loop load at a fixed rate (requests/s) for warmupSec (discarded) then durationSec,
//     through an undici Pool of `connections` connections (used by bench/governance-overhead.js):
//     request i is sent at start + i / rate whatever the answers do, so a slow server shows as
//     rising latency, not as a lower rate. Latency = dispatch to the end of the body; every
//     response is checked like the ttfb job's. Every sliceSec it prints one line
//     `SLICE {...}` with the figures of the responses that ended in that slice.

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
  const stream = job.stream;
  const expect = job.expectHeaders ? Object.entries(job.expectHeaders).map(([k, v]) => [k.toLowerCase(), v]) : null;
  const ttfb = new Samples();
  const total = new Samples();
  const counts = { ok: 0, non2xx: 0, errors: 0, badBody: 0, badHeader: 0 };
  const statusCodes = {};
  const errorMessages = {};
  const badHeaderValues = {};
  let record = false;
  let body = job.warmupBody ?? job.body;

  function headerOk(responseHeaders) {
    if (!expect) return true;
    let ok = true;
    for (const [name, want] of expect) {
      let got = null;
      for (const [k, v] of Object.entries(responseHeaders ?? {})) if (k.toLowerCase() === name) got = Array.isArray(v) ? v.join(',') : String(v);
      if (got !== want) {
        ok = false;
        const key = `${name}: ${got ?? '(absent)'}`;
        badHeaderValues[key] = (badHeaderValues[key] || 0) + 1;
      }
    }
    return ok;
  }

  function one() {
    return new Promise((resolve) => {
      let start = 0n;
      let first = 0n;
      let status = 0;
      let headersOk = true;
      const parts = [];
      start = process.hrtime.bigint();
      pool.dispatch(
        { method: 'POST', path, headers, body },
        {
          onRequestStart() {},
          onResponseStart(_c, statusCode, responseHeaders) {
            status = statusCode;
            if (record) headersOk = headerOk(responseHeaders);
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
              else if (!headersOk) counts.badHeader++;
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
  body = job.body;
  process.stdout.write('MEASURE_START\n');
  const t0 = process.hrtime.bigint();
  await phase(job.durationSec ? { durationSec: job.durationSec } : { requests: job.requests });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await pool.close();
  const us = (v) => Array.from(v, (x) => Math.round(x * 1000) / 1000);
  return {
    ...(job.keepSamples ? { samples: { ttfbMs: us(ttfb.values()), totalMs: us(total.values()) } } : {}),
    ...(expect ? { badHeaderValues } : {}),
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

async function pacedJob() {
  const url = new URL(job.url);
  const pool = new Pool(url.origin, { connections: job.connections ?? 64, pipelining: 1, keepAliveTimeout: 60_000 });
  const path = url.pathname + url.search;
  const { headers, body, stream, rate } = job;
  const sliceMs = (job.sliceSec ?? 5) * 1000;
  let record = false;
  const counts = { sent: 0, done: 0, ok: 0, non2xx: 0, errors: 0, badBody: 0 };
  const statusCodes = {};
  const errorMessages = {};
  const all = new Samples();
  let slice = new Samples();
  let sliceBad = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let maxLagMs = 0;
  let doneAll = 0; // answers of the warm-up and the measured phase

  function one() {
    const start = process.hrtime.bigint();
    const rec = record;
    const parts = [];
    let status = 0;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    if (rec) counts.sent++;
    const finish = (err) => {
      inFlight--;
      doneAll++;
      if (!rec) return;
      counts.done++;
      if (err) {
        counts.errors++;
        sliceBad++;
        const key = err.code || err.message;
        errorMessages[key] = (errorMessages[key] || 0) + 1;
        return;
      }
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      statusCodes[status] = (statusCodes[status] || 0) + 1;
      if (status !== 200) {
        counts.non2xx++;
        sliceBad++;
      } else if (!checkBody(Buffer.concat(parts).toString(), stream)) {
        counts.badBody++;
        sliceBad++;
      } else {
        counts.ok++;
        all.push(ms);
        slice.push(ms);
      }
    };
    pool.dispatch(
      { method: 'POST', path, headers, body },
      {
        onRequestStart() {},
        onResponseStart(_c, statusCode) {
          status = statusCode;
        },
        onResponseData(_c, chunk) {
          parts.push(chunk);
        },
        onResponseEnd() {
          finish(null);
        },
        onResponseError(_c, err) {
          finish(err);
        },
      },
    );
  }

  // Sends what is due every millisecond (timers are not precise enough for one per request).
  async function phase(durationSec, onSlice) {
    const t0 = process.hrtime.bigint();
    const total = Math.round(durationSec * rate);
    let sent = 0;
    let nextSlice = sliceMs;
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
        const due = Math.min(total, Math.floor((elapsedMs / 1000) * rate) + 1);
        if (due - sent > 1) maxLagMs = Math.max(maxLagMs, ((due - sent - 1) / rate) * 1000);
        while (sent < due) {
          one();
          sent++;
        }
        if (onSlice && elapsedMs >= nextSlice) {
          onSlice(nextSlice / 1000);
          nextSlice += sliceMs;
        }
        if (sent >= total && elapsedMs >= durationSec * 1000) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
  }

  const slices = [];
  let prevSent = 0;
  if (job.warmupSec > 0) await phase(job.warmupSec, null);
  record = true;
  process.stdout.write('MEASURE_START\n');
  const t0 = process.hrtime.bigint();
  await phase(job.durationSec, (atSec) => {
    const s = summarize(slice.values());
    const out = { i: slices.length, atSec, sent: counts.sent - prevSent, ok: s.count, bad: sliceBad, inFlight, doneTotal: doneAll, p50: s.p50, p99: s.p99, max: s.max };
    prevSent = counts.sent;
    slices.push(out);
    slice = new Samples(4096);
    sliceBad = 0;
    process.stdout.write(`SLICE ${JSON.stringify(out)}\n`);
  });
  const sendSec = Number(process.hrtime.bigint() - t0) / 1e9;
  // Wait for the answers still in flight (at most 30 s; pool.close() then waits for the rest).
  const deadline = Date.now() + 30_000;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const late = inFlight;
  await pool.close();
  return {
    kind: 'paced',
    rate,
    stream,
    durationSec: sendSec,
    sentRate: counts.sent / sendSec,
    ...counts,
    answeredOver30sLate: late,
    warmupDone: doneAll - counts.done,
    maxInFlight,
    maxLagMs,
    latencyMs: summarize(all.values()),
    slices,
    statusCodes,
    errorMessages,
  };
}

try {
  const out = job.kind === 'autocannon' ? await autocannonJob() : job.kind === 'paced' ? await pacedJob() : await ttfbJob();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ kind: job.kind, fatal: String(err && err.stack ? err.stack : err) })}\n`);
  process.exit(1);
}
