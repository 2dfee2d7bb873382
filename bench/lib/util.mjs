// Process, port, /proc and statistics helpers shared by the benchmark harness.
// Every child is started in its own process group (detached) and remembered here, so that
// `cleanupAll()` (called on exit, on signals and on uncaught errors) can end exactly the
// processes this harness started, by PID, and nothing else.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- children and cleanup

/** @type {Set<{name:string, child:import('node:child_process').ChildProcess, exited:boolean}>} */
const children = new Set();

/**
 * Starts a long-running peer. `cpu` pins it with taskset (undefined = no pinning). stdout goes to
 * /dev/null unless `stdoutFile` is given; stderr goes to `stderrFile` (so start-up errors can be shown).
 */
export function startProcess(name, cmd, args, { cpu, cwd, env, stderrFile, stdoutFile, ipc = false } = {}) {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  const errFd = stderrFile ? openSync(stderrFile, 'a') : 'ignore';
  const outFd = stdoutFile ? openSync(stdoutFile, 'a') : 'ignore';
  const stdio = ['ignore', outFd, errFd];
  if (ipc) stdio.push('ipc');
  const child = spawn(file, argv, { cwd, env: env ?? process.env, stdio, detached: true });
  if (typeof errFd === 'number') closeSync(errFd);
  if (typeof outFd === 'number') closeSync(outFd);
  const rec = { name, child, exited: false, exitCode: null, signal: null };
  children.add(rec);
  child.on('exit', (code, signal) => {
    rec.exited = true;
    rec.exitCode = code;
    rec.signal = signal;
  });
  child.on('error', (err) => {
    rec.exited = true;
    rec.error = err;
  });
  return rec;
}

/** SIGTERM to the child's process group, then SIGKILL after `graceMs`. */
export async function stopProcess(rec, graceMs = 2000) {
  if (!rec || !children.has(rec)) return;
  const pid = rec.child.pid;
  if (!rec.exited && pid) {
    killGroup(pid, 'SIGTERM');
    const until = Date.now() + graceMs;
    while (!rec.exited && Date.now() < until) await sleep(25);
  }
  // The group may still hold children (nginx workers) even if the leader is gone.
  if (pid) killGroup(pid, 'SIGKILL');
  children.delete(rec);
}

function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Synchronous last resort: used from 'exit' and signal handlers. */
export function cleanupAllSync() {
  for (const rec of children) {
    if (rec.child.pid) killGroup(rec.child.pid, 'SIGKILL');
  }
  children.clear();
}

export async function cleanupAll() {
  await Promise.all([...children].map((r) => stopProcess(r, 1500)));
}

/** Runs a bounded command to completion (load generators). Kills its group at `timeoutMs`. */
export function runCommand(cmd, args, { cpu, timeoutMs = 60_000, cwd } = {}) {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  return new Promise((resolve) => {
    const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const rec = { name: cmd, child, exited: false };
    children.add(rec);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    const done = (code, signal, error) => {
      clearTimeout(t);
      rec.exited = true;
      children.delete(rec);
      resolve({ code, signal, stdout, stderr, timedOut, error });
    };
    child.on('error', (err) => done(null, null, err));
    child.on('close', (code, signal) => done(code, signal));
  });
}

export function commandOutput(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

// ---------------------------------------------------------------- ports and readiness

/**
 * Asks the kernel for `n` distinct free loopback ports (held open together, then released), none
 * of them in `avoid` (ports handed out earlier and not bound yet).
 */
export async function freePorts(n, avoid = []) {
  const servers = [];
  const ports = [];
  for (let tries = 0; ports.length < n && tries < n + 100; tries++) {
    const s = net.createServer();
    await new Promise((res, rej) => s.listen(0, '127.0.0.1', res).on('error', rej));
    servers.push(s);
    if (!avoid.includes(s.address().port)) ports.push(s.address().port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export function tcpConnects(port, host = '127.0.0.1', timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** Waits until `port` accepts connections, or the process exits, or the timeout passes. */
export async function waitForPort(port, { rec, timeoutMs = 10_000 } = {}) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (rec?.exited) return { ok: false, reason: `exited (code ${rec.exitCode}, signal ${rec.signal}${rec.error ? `, ${rec.error.message}` : ''})` };
    if (await tcpConnects(port)) return { ok: true };
    await sleep(50);
  }
  return { ok: false, reason: `port ${port} not accepting after ${timeoutMs} ms` };
}

/** One HTTP/1.1 GET on loopback; resolves { status, bytes, headers } or { error }. */
export function httpGet(port, path, host, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      let head = '';
      res.on('data', (d) => {
        bytes += d.length;
        if (head.length < 120) head += d.toString('latin1', 0, Math.min(d.length, 120));
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes, headers: res.headers, bodyStart: head.slice(0, 120) }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

export function tail(file, lines = 8) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- /proc

const CLK_TCK = Number(commandOutput('getconf', ['CLK_TCK'])) || 100;
const PAGE = Number(commandOutput('getconf', ['PAGESIZE'])) || 4096;

function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parens: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), rssPages: Number(f[21]) };
  } catch {
    return undefined;
  }
}

/** The pid plus all its descendants (nginx master + worker, a Node primary + its workers). */
export function processTree(rootPid) {
  const byParent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (!st) continue;
    const list = byParent.get(st.ppid) ?? [];
    list.push(Number(name));
    byParent.set(st.ppid, list);
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of byParent.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** Pins a running process and all its threads to one CPU (taskset -a -p); false when taskset fails. */
export function pinProcess(pid, cpu) {
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
}

/** CPU seconds (user+system) summed over a process tree. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const p of pids) {
    const st = readStat(p);
    if (st) ticks += st.utime + st.stime;
  }
  return ticks / CLK_TCK;
}

/** RSS in bytes summed over a process tree (VmRSS, as /proc/<pid>/status reports it). */
export function rssBytes(pids) {
  let total = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      const st = readStat(p);
      if (st) total += st.rssPages * PAGE;
    }
  }
  return total;
}

/** Samples max RSS of a tree every `everyMs` until stop() is called. */
export function rssSampler(rootPid, everyMs = 200) {
  let max = 0;
  const take = () => {
    const pids = processTree(rootPid);
    max = Math.max(max, rssBytes(pids));
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return max;
    },
  };
}

// ---------------------------------------------------------------- pinning

/** Pinning plan: proxy under test on CPU 1, load generator + upstream on CPU 0 (when possible). */
export function pinningPlan(disabled) {
  if (disabled) return { applied: false, reason: 'disabled with --no-pin', proxy: undefined, load: undefined };
  const allowed = parseCpuList(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '');
  if (!existsSync('/usr/bin/taskset') && !commandOutput('sh', ['-c', 'command -v taskset'])) return { applied: false, reason: 'taskset not found' };
  if (allowed.length < 2) return { applied: false, reason: `only CPUs [${allowed}] allowed` };
  const [load, proxy] = [allowed[0], allowed[1]];
  const probe = spawnSync('taskset', ['-c', String(proxy), 'true']);
  if (probe.status !== 0) return { applied: false, reason: `taskset failed: ${String(probe.stderr).trim()}` };
  return { applied: true, proxy, load, allowed, reason: `proxy on CPU ${proxy}; load generator and upstream on CPU ${load}` };
}

function parseCpuList(s) {
  const out = [];
  for (const part of s.split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

// ---------------------------------------------------------------- statistics

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Half the min..max range as a fraction of the median (a crude spread for the table). */
export function spread(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  const m = median(v);
  if (v.length < 2 || !m) return undefined;
  return (Math.max(...v) - Math.min(...v)) / 2 / Math.abs(m);
}
