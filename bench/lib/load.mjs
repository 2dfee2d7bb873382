// Load generators, each bounded in time (their own -d/-D/-t plus a kill timeout) and parsed into
// plain numbers: wrk (throughput, connections/s), h2load at a constant rate (latency percentiles
// from its per-request log), iperf3 (L4 Gbit/s), and the Node CONNECT client.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, runCommand } from './util.mjs';

/** "1.23GB" (wrk's Transfer/sec) -> bytes. */
function wrkBytes(s) {
  const m = /^([\d.]+)([KMGT]?)B$/.exec(s ?? '');
  return m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ') : undefined;
}

/**
 * wrk -t1 -c<conns> -d<secs>s, no pipelining. Extra headers as ['Host: x', ...]. With `tlsHost`,
 * https://<tlsHost>:<port> (wrk sends tlsHost as SNI; it must resolve to loopback).
 */
export async function wrk({ port, path, headers = [], conns = 32, seconds, cpu, tlsHost }) {
  const args = ['-t1', `-c${conns}`, `-d${Math.max(1, Math.round(seconds))}s`, '--timeout', '5s'];
  for (const h of headers) args.push('-H', h);
  args.push(tlsHost ? `https://${tlsHost}:${port}${path}` : `http://127.0.0.1:${port}${path}`);
  const r = await runCommand('wrk', args, { cpu, timeoutMs: (seconds + 20) * 1000 });
  const out = r.stdout;
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const res = {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socketErrors: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : undefined,
    transfer: /Transfer\/sec:\s+(\S+)/.exec(out)?.[1],
  };
  res.bytesPerSec = wrkBytes(res.transfer);
  if (r.code !== 0 || res.rps === undefined) res.error = `wrk exited ${r.code}${r.timedOut ? ' (timeout)' : ''}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`;
  else if (res.non2xx > 0) res.error = `${res.non2xx} non-2xx responses of ${res.requests}`;
  else if (res.socketErrors && res.socketErrors.connect + res.socketErrors.timeout > 0) res.error = `socket errors ${JSON.stringify(res.socketErrors)}`;
  return res;
}

/**
 * Constant-rate HTTP/1.1 load with h2load: <clients> connections, <rps/clients> requests/s each,
 * for <seconds>. Percentiles come from h2load's per-request log (--log-file), not its summary.
 */
export async function h2loadConstant({ port, path, host, rps = 1000, clients = 10, seconds, cpu, dir, tag }) {
  const logFile = join(dir, `h2load-${tag}-${Date.now()}.log`);
  const perClient = Math.max(1, Math.round(rps / clients));
  const args = ['--h1', '-t1', `-c${clients}`, `--rps=${perClient}`, `-D${Math.max(1, Math.round(seconds))}`, '-H', `:authority: ${host}`, `--log-file=${logFile}`, `http://127.0.0.1:${port}${path}`];
  // h2load 1.52 can spin past -D when the server closes connections (e.g. on 4xx): hard limit.
  const r = await runCommand('h2load', args, { cpu, timeoutMs: (seconds + 8) * 1000 });
  const res = { targetRps: perClient * clients, clients };
  let lines = [];
  try {
    lines = readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean);
    rmSync(logFile, { force: true });
  } catch (err) {
    res.error = `no h2load log: ${err.message}`;
  }
  const lat = [];
  let bad = 0;
  let first = Infinity;
  let last = 0;
  for (const line of lines) {
    const [startUs, status, durUs] = line.split('\t').map(Number);
    if (status < 200 || status >= 300) bad++;
    else lat.push(durUs);
    first = Math.min(first, startUs);
    last = Math.max(last, startUs + durUs);
  }
  lat.sort((a, b) => a - b);
  const wall = last > first ? (last - first) / 1e6 : seconds;
  Object.assign(res, {
    requests: lines.length,
    failed: bad,
    achievedRps: lines.length / wall,
    p50Ms: lat.length ? percentile(lat, 50) / 1000 : undefined,
    p90Ms: lat.length ? percentile(lat, 90) / 1000 : undefined,
    p99Ms: lat.length ? percentile(lat, 99) / 1000 : undefined,
    maxMs: lat.length ? lat[lat.length - 1] / 1000 : undefined,
  });
  const summary = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(r.stdout);
  if (summary) res.h2loadSummary = { total: +summary[1], done: +summary[3], succeeded: +summary[4], failed: +summary[5], errored: +summary[6], timeout: +summary[7] };
  if (!res.error && r.timedOut) res.error = `h2load did not stop after -D${seconds} (killed)`;
  if (!res.error && r.code !== 0) res.error = `h2load exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`;
  if (!res.error && lat.length === 0) res.error = `no successful requests (${bad} failed)`;
  if (!res.error && bad > 0) res.error = `${bad} non-2xx of ${lines.length}`;
  return res;
}

/** iperf3 client, one stream, <seconds>; Gbit/s received. */
export async function iperf3({ port, seconds, cpu }) {
  const r = await runCommand('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(Math.max(1, Math.round(seconds))), '-J'], { cpu, timeoutMs: (seconds + 20) * 1000 });
  try {
    const j = JSON.parse(r.stdout);
    if (j.error) return { error: `iperf3: ${j.error}` };
    return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent?.retransmits };
  } catch {
    return { error: `iperf3 exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}` };
  }
}

const CONNECT_CLIENT = fileURLToPath(new URL('./connect-client.mjs', import.meta.url));

export async function connectLoad({ proxyPort, targetHost, targetPort, path, host, conns = 32, seconds, cpu, newTunnels = false }) {
  const args = [CONNECT_CLIENT, '--target', `${targetHost}:${targetPort}`, '--path', path, '--host', host, '--conns', String(conns), '--duration', String(seconds)];
  if (proxyPort) args.push('--proxy', `127.0.0.1:${proxyPort}`);
  if (newTunnels) args.push('--new-tunnels');
  const r = await runCommand(process.execPath, args, { cpu, timeoutMs: (seconds + 25) * 1000 });
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    if (j.tunnels === 0) j.error = `no tunnel opened: ${j.errorSamples.join('; ')}`;
    else if (j.non200 > 0) j.error = `${j.non200} non-200 responses`;
    else if (j.errors > 0) j.error = `${j.errors} errors: ${j.errorSamples.join('; ')}`;
    return j;
  } catch {
    return { error: `connect-client exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}` };
  }
}
