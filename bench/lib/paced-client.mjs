// Constant-rate HTTP/1.1 latency client: one request every 1/rate seconds, spread evenly in time,
// over a few keep-alive connections (a request goes out on whichever connection is idle).
//
// Why not h2load --rps: h2load arms one timer per client and the timers of all clients fire
// together, so `-c10 --rps=100` sends a burst of 10 requests every 10 ms rather than one every
// millisecond; and even `-c1 --rps=1000` fires about every 10 ms and sends the ten due requests
// back to back. The latency it reports is then mostly the wait behind the other nine requests of
// the burst (ten times the proxy's service time), not the time one request spends in the proxy.
//
// Usage: node paced-client.mjs <port> <host> <path> <rate> <conns> <seconds> <warmupSeconds> [timelineFile]
// Prints one JSON object: requests, failed, achievedRps, late (requests that found no idle
// connection and waited for one), served (every successful response of the run, warm-up
// included: the denominator for CPU measured around the whole run), and the latency of each
// measured request in microseconds, sorted, from the write of its head to the last byte of its
// body. With a timeline file, also one line per measured request in the order sent: its send
// time (µs from the start of the measured window; the header gives the window's start on the
// monotonic and the wall clock, to line it up with `strace -ttt` or `--trace-gc` output), its
// latency (µs) and its connection index, to see which requests are slow (a new connection? every
// Nth? at a regular period?).
import { writeFileSync } from 'node:fs';
import net from 'node:net';

const [port, host, path, rate, conns, seconds, warmup, timelineFile] = process.argv.slice(2);
const RATE = Number(rate);
const CONNS = Math.max(1, Number(conns));
const MEASURE_MS = Number(seconds) * 1000;
const WARMUP_MS = Number(warmup) * 1000;
const HEAD = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: tollgate-bench-paced\r\n\r\n`, 'latin1');
const MAX_SAMPLES = Math.ceil((RATE * MEASURE_MS) / 1000) + 1000;

const now = () => Number(process.hrtime.bigint()) / 1000; // µs
const samples = new Float64Array(MAX_SAMPLES);
const sentAt = new Float64Array(MAX_SAMPLES);
const sentOn = new Uint16Array(MAX_SAMPLES);
let nSamples = 0;
let served = 0;
let failed = 0;
let late = 0;
let sent = 0;
let measuredSent = 0;
let errorText;

class Conn {
  constructor(index) {
    this.index = index;
    this.busy = true; // until connected
    this.startedAt = 0;
    this.measured = false;
    this.buf = Buffer.alloc(0);
    this.socket = net.connect({ port: Number(port), host: '127.0.0.1', noDelay: true }, () => {
      this.busy = false;
    });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => {
      errorText ??= err.message;
    });
    this.socket.on('close', () => {
      this.busy = true; // never used again: the run reports it through `late`/`failed`
      if (this.startedAt) failed++;
    });
  }

  send(measured) {
    this.busy = true;
    this.measured = measured;
    this.startedAt = now();
    this.socket.write(HEAD);
  }

  onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + len) return;
    const startedAt = this.startedAt;
    const took = now() - startedAt;
    const ok = head.startsWith('HTTP/1.1 2');
    this.buf = this.buf.subarray(end + 4 + len);
    this.startedAt = 0;
    this.busy = false;
    if (ok) served++;
    if (this.measured) {
      if (!ok) failed++;
      else if (nSamples < MAX_SAMPLES) {
        sentAt[nSamples] = startedAt;
        sentOn[nSamples] = this.index;
        samples[nSamples++] = took;
      }
    }
    sendDue();
  }
}

const pool = Array.from({ length: CONNS }, (_, i) => new Conn(i));
let next = 0;
let pending = 0; // due but not yet sent (no idle connection)
let t0 = 0;
let measureFrom = Infinity;
let stopAt = 0;

function sendDue() {
  const t = now();
  const measured = t >= measureFrom && t < stopAt;
  while (pending > 0) {
    let c;
    for (let i = 0; i < CONNS && !c; i++) {
      const cand = pool[(next + i) % CONNS];
      if (!cand.busy) c = cand;
    }
    if (!c) return;
    next = (pool.indexOf(c) + 1) % CONNS;
    pending--;
    c.send(measured);
    if (measured) measuredSent++;
  }
}

await new Promise((resolve) => setTimeout(resolve, 200)); // connect
t0 = now();
measureFrom = t0 + WARMUP_MS * 1000;
const wallAtMeasureFrom = Date.now() / 1000 + (measureFrom - now()) / 1e6;
stopAt = measureFrom + MEASURE_MS * 1000;
// A 1 ms tick, each sending the requests that fell due since the last one: one request per tick at
// 1,000 req/s, with no alignment between connections.
const tick = setInterval(() => {
  const t = now();
  if (t >= stopAt) {
    clearInterval(tick);
    return;
  }
  const due = Math.floor(((t - t0) / 1e6) * RATE);
  const fresh = due - sent;
  if (fresh <= 0) return;
  sent = due;
  if (pending > 0 && t >= measureFrom) late += Math.min(pending, fresh);
  pending += fresh;
  sendDue();
}, 1);
await new Promise((resolve) => setTimeout(resolve, WARMUP_MS + MEASURE_MS + 300));
clearInterval(tick);
// Give the last requests up to 2 s to finish; a request still out then counts as failed.
const drainUntil = Date.now() + 2000;
while (pool.some((c) => c.startedAt) && Date.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 10));
for (const c of pool) {
  if (c.startedAt && c.measured) failed++;
  c.socket.removeAllListeners('close');
  c.socket.destroy();
}
if (timelineFile) {
  const order = Array.from({ length: nSamples }, (_, i) => i).sort((a, b) => sentAt[a] - sentAt[b]);
  const lines = order.map((i) => `${Math.round(sentAt[i] - measureFrom)} ${Math.round(samples[i])} ${sentOn[i]}`);
  writeFileSync(timelineFile, `# sentUs latencyUs conn (window start: monotonic ${Math.round(measureFrom)} µs, wall clock ${wallAtMeasureFrom.toFixed(6)} s)\n${lines.join('\n')}\n`);
}
const lat = Array.from(samples.subarray(0, nSamples)).sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({ requests: measuredSent, served, failed, late, achievedRps: nSamples / (MEASURE_MS / 1000), error: errorText, latUs: lat.map((x) => Math.round(x)) })}\n`,
);
