// Load generators, each bounded in time (their own -d/-D/-t plus a kill timeout) and parsed into
// plain numbers: wrk (throughput, connections/s), the paced client at a constant rate (latency
// percentiles per request), iperf3 (L4 Gbit/s), and the Node CONNECT client.
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

const PACED_CLIENT = fileURLToPath(new URL('./paced-client.mjs', import.meta.url));

/**
 * Constant-rate HTTP/1.1 load from bench/lib/paced-client.mjs: one request every 1/rps seconds,
 * spread evenly (h2load --rps sends them in bursts, see there), over <conns> keep-alive
 * connections, for <warmup> + <seconds>; only the requests sent after the warm-up are measured.
 * Latency = from writing the request head to the last byte of the body, per request.
 */
export async function pacedConstant({ port, path, host, rps = 1000, conns = 10, seconds, warmup = 1, cpu }) {
  const r = await runCommand(process.execPath, [PACED_CLIENT, String(port), host, path, String(rps), String(conns), String(seconds), String(warmup)], {
    cpu,
    timeoutMs: (seconds + warmup + 15) * 1000,
  });
  let out;
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { error: `paced client exited ${r.code}${r.timedOut ? ' (timeout)' : ''}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}` };
  }
  const lat = out.latUs;
  const ms = (p) => (lat.length ? percentile(lat, p) / 1000 : undefined);
  const res = {
    targetRps: rps,
    clients: conns,
    requests: out.requests,
    served: out.served,
    samples: lat.length,
    failed: out.failed,
    late: out.late,
    achievedRps: out.achievedRps,
    p50Ms: ms(50),
    p90Ms: ms(90),
    p99Ms: ms(99),
    p999Ms: ms(99.9),
    maxMs: lat.length ? lat[lat.length - 1] / 1000 : undefined,
  };
  if (out.error) res.error = `paced client: ${out.error}`;
  else if (lat.length === 0) res.error = `no successful requests (${out.failed} failed)`;
  else if (out.failed > 0) res.error = `${out.failed} failed of ${out.requests}`;
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
const PACED_CONNECTIONS = fileURLToPath(new URL('./paced-connections.mjs', import.meta.url));

/** New connections at a constant `rate` (paced-connections.mjs), one GET each; `tlsHost`: over TLS with that SNI. */
export async function pacedConnections({ port, path, host, rate, seconds, cpu, tlsHost }) {
  const args = [PACED_CONNECTIONS, String(port), host, path, String(rate), String(seconds), ...(tlsHost ? [tlsHost] : [])];
  const r = await runCommand(process.execPath, args, { cpu, timeoutMs: (seconds + 25) * 1000 });
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    if (j.connections === 0) j.error = `no connection completed${j.error ? `: ${j.error}` : ''}`;
    else if (j.failed > j.connections / 10) j.error = `${j.failed} of ${j.connections + j.failed} connections failed${j.error ? ` (${j.error})` : ''}`;
    else delete j.error;
    return j;
  } catch {
    return { error: `paced-connections exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}` };
  }
}

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
