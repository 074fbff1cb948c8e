// Shared pieces of the bench drivers (bench/gateway-overhead.js, bench/governance-overhead.js):
// CPU pinning with taskset, child-process bookkeeping, /proc CPU and memory accounting, the
// pinned load-client runner and the table/number formatting of the reports.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const NODE = process.execPath;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (msg = '') => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Pinning

export const HAVE_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
export const NCPU = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
export const PINNING = HAVE_TASKSET && NCPU >= 2;

/** [cmd, args] running `args` pinned to `core` (when taskset and 2+ cores are available). */
export function pinned(core, args) {
  return PINNING ? ['taskset', ['-c', core, ...args]] : [args[0], args.slice(1)];
}

// ---------------------------------------------------------------------------------------------
// Children

const children = new Set();
export function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
export function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGTERM');
    } catch {}
  }
}

export async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** Start a node script pinned to `core` and wait for its `<TAG>_READY port=N` line. */
export function startReadyLine(name, core, args, tag, opts = {}) {
  return new Promise((resolve, reject) => {
    const [cmd, cargs] = pinned(core, [NODE, ...args]);
    const child = track(spawn(cmd, cargs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not become ready in 15 s\n${err}`)), 15_000);
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(new RegExp(`${tag}_READY port=(\\d+)`));
      if (m) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready\n${err}`));
    });
  });
}

/** The mock upstream (bench/mock-upstream.js) pinned to `core`. */
export function startMock(core, chunkDelayMs = 0) {
  const args = [path.join(BENCH_DIR, 'mock-upstream.js'), '--port', '0'];
  if (chunkDelayMs > 0) args.push('--chunk-delay', String(chunkDelayMs));
  return startReadyLine('mock upstream', core, args, 'MOCK');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function countLines(file) {
  try {
    const buf = fs.readFileSync(file);
    let n = 0;
    for (let i = 0; i < buf.length; i++) if (buf[i] === 10) n++;
    return n;
  } catch {
    return 0;
  }
}

export function gitInfo() {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const d = spawnSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' });
  return { commit: r.stdout?.trim() || null, dirty: !!d.stdout?.trim() };
}

export function machineInfo() {
  return {
    cpus: os.cpus().map((c) => c.model)[0],
    ncpu: NCPU,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    pinning: PINNING,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadavg: os.loadavg(),
  };
}

// ---------------------------------------------------------------------------------------------
// CPU and memory accounting from /proc: per-process (all threads) and per-core busy time, in s.

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

export function procCpuSec(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
  } catch {
    return null;
  }
}

/** CPU seconds of several processes together (an array of pids; a vanished one counts 0). */
export function procsCpuSec(pids) {
  let sum = 0;
  for (const pid of pids) sum += procCpuSec(pid) ?? 0;
  return sum;
}

/** Pids whose command name (/proc/<pid>/comm) matches `re`, e.g. /^(postgres|redis-server)$/. */
export function pidsByName(re) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (re.test(fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim())) out.push(Number(name));
    } catch {}
  }
  return out;
}

/** Resident set size of a process in MB (VmRSS), or null. */
export function rssMB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export function coreTimes() {
  try {
    const out = {};
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = line.match(/^cpu(\d+)\s+(.*)$/);
      if (!m) continue;
      const v = m[2].split(/\s+/).map(Number);
      const idle = v[3] + (v[4] || 0);
      const steal = v[7] || 0;
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[m[1]] = { busy: (total - idle - steal) / CLK_TCK, steal: steal / CLK_TCK, total: total / CLK_TCK };
    }
    return out;
  } catch {
    return null;
  }
}

/** pids: { name: pid | pid[] | null }; an array is summed (e.g. all PostgreSQL processes). */
export function cpuSnapshot(pids) {
  const t = process.hrtime.bigint();
  return {
    t,
    cores: coreTimes(),
    procs: Object.fromEntries(
      Object.entries(pids).map(([k, pid]) => [k, Array.isArray(pid) ? procsCpuSec(pid) : pid ? procCpuSec(pid) : null]),
    ),
  };
}

export function cpuDelta(a, b) {
  const wall = Number(b.t - a.t) / 1e9;
  const out = { wallSec: wall, cores: {}, procs: {} };
  if (a.cores && b.cores) {
    for (const c of Object.keys(b.cores)) {
      out.cores[c] = {
        busy: (b.cores[c].busy - a.cores[c].busy) / wall,
        steal: (b.cores[c].steal - a.cores[c].steal) / wall,
      };
    }
  }
  for (const k of Object.keys(b.procs)) {
    out.procs[k] = a.procs[k] == null || b.procs[k] == null ? null : (b.procs[k] - a.procs[k]) / wall;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Load client

/**
 * Runs one job of bench/load-client.js pinned to `core`. The client prints MEASURE_START when
 * its measured phase begins and one JSON line at the end; CPU of `pids` (plus the client as
 * `load`) and of the cores is sampled over exactly that window. Other lines the client prints
 * (e.g. `SLICE {...}`) are passed to `onLine`.
 */
export function runLoadClient(job, { core, pids = {}, onLine } = {}) {
  return new Promise((resolve) => {
    const [cmd, cargs] = pinned(core, [NODE, path.join(BENCH_DIR, 'load-client.js'), JSON.stringify(job)]);
    const child = track(spawn(cmd, cargs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    let pending = '';
    let snap0 = null;
    let snap1 = null;
    child.stdout.on('data', (d) => {
      out += d;
      pending += d;
      let nl;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === 'MEASURE_START') {
          if (!snap0) snap0 = cpuSnapshot({ ...pids, load: child.pid });
        } else if (line.startsWith('{')) {
          if (snap0 && !snap1) snap1 = cpuSnapshot({ ...pids, load: child.pid });
        } else if (onLine) {
          onLine(line);
        }
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('exit', (code) => {
      const line = out.split('\n').filter((l) => l.startsWith('{')).pop();
      let res;
      try {
        res = JSON.parse(line);
      } catch {
        res = { fatal: `load client exited ${code} without a result\n${err}${out.slice(-2000)}` };
      }
      if (snap0 && snap1) res.cpu = cpuDelta(snap0, snap1);
      if (err.trim()) res.stderr = err.trim().slice(0, 2000);
      resolve(res);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const f1 = (v) => (v == null || Number.isNaN(v) ? '-' : v.toFixed(1));
export const f2 = (v) => (v == null || Number.isNaN(v) ? '-' : v.toFixed(2));
export const f3 = (v) => (v == null || Number.isNaN(v) ? '-' : v.toFixed(3));
export const int = (v) => (v == null || Number.isNaN(v) ? '-' : Math.round(v).toLocaleString('en-US'));
export const pct = (v) => (v == null || Number.isNaN(v) ? '-' : `${(v * 100).toFixed(1)}%`);
export const signed = (v, digits = 3) => (v == null || Number.isNaN(v) ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`);

export function table(headers, rows, align) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r) => r.map((c, i) => ((align?.[i] ?? 'r') === 'l' ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [fmt(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Percentiles (nearest rank, as bench/load-client.js computes them)

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** { count, mean, p50, p90, p99, min, max } of an array of numbers. */
export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  return {
    count: n,
    mean: n ? sum / n : null,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    min: n ? sorted[0] : null,
    max: n ? sorted[n - 1] : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Chatgate

/**
 * `node bin/chatgate.js serve` pinned to `core`, with the YAML config `yaml` written into `dir`
 * (data dir `dir/data`, stdout and stderr to files there) and CHATGATE_MASTER_KEY = `masterKey`;
 * resolves once GET /v1/models answers 200: { child, pid, port, base, dir, dataDir, logFile, errFile }.
 */
export async function startChatgateServe({ yaml, dir, core, masterKey, root = ROOT, nodeArgs = [] }) {
  fs.mkdirSync(dir, { recursive: true });
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'chatgate.yaml');
  fs.writeFileSync(configFile, yaml.endsWith('\n') ? yaml : `${yaml}\n`);
  const port = await freePort();
  const logFile = path.join(dir, 'chatgate.stdout.log');
  const errFile = path.join(dir, 'chatgate.stderr.log');
  const outFd = fs.openSync(logFile, 'w');
  const errFd = fs.openSync(errFile, 'w');
  const args = [NODE, ...nodeArgs, path.join(root, 'bin', 'chatgate.js'), 'serve', '--config', configFile, '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir];
  const [cmd, cargs] = pinned(core, args);
  const child = track(spawn(cmd, cargs, { cwd: dir, stdio: ['ignore', outFd, errFd], env: { ...process.env, CHATGATE_MASTER_KEY: masterKey } }));
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  let exited = null;
  child.on('exit', (code, sig) => {
    exited = sig || code;
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && exited === null) {
    try {
      const r = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${masterKey}` } });
      await r.arrayBuffer();
      if (r.status === 200) return { child, pid: child.pid, port, base, dir, dataDir, logFile, errFile };
    } catch {}
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(`Chatgate did not start${exited !== null ? ` (exited: ${exited})` : ''}\n--- stderr ---\n${tail(errFile)}\n--- stdout ---\n${tail(logFile)}`);
}

/**
 * On exit: stop the tracked children (`kill`, default killAll) and remove the temp directory
 * (`dir()`, unless `keep`); on SIGINT/SIGTERM: the same after `onSignal` (e.g. dropping
 * database schemas), exit code 130.
 */
export function cleanUpOnExit({ dir, keep = false, kill = killAll, onSignal = async () => {} }) {
  process.on('exit', () => {
    kill();
    const path_ = dir();
    if (typeof path_ === 'string' && !keep) {
      try {
        fs.rmSync(path_, { recursive: true, force: true });
      } catch {}
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, async () => {
      kill();
      await onSignal().catch(() => {});
      process.exit(130);
    });
  }
}

// Whether a source file (the .ts files under src/, tests aside) is newer than the build in dist/ (for --no-build).
export function staleBuild() {
  const newest = (dir, re) => {
    let t = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(p, re));
      else if (re.test(e.name)) t = Math.max(t, fs.statSync(p).mtimeMs);
    }
    return t;
  };
  try {
    return newest(path.join(ROOT, 'src'), /(?<!\.test)\.ts$/) > newest(path.join(ROOT, 'dist'), /\.js$/);
  } catch {
    return true;
  }
}

// Builds Chatgate (npm run build) when `build`, else warns when dist/ is older than src/.
// Exits with code 2 when the build fails.
export function buildOrWarn(build) {
  if (build) {
    log('building Chatgate (npm run build) ...');
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(`npm run build failed\n${(r.stdout || '').slice(-2000)}${(r.stderr || '').slice(-2000)}`);
      process.exit(2);
    }
  } else if (staleBuild()) {
    log('!! WARNING: a file in src/ is newer than dist/: run without --no-build to measure the current code');
  }
}
