// New connections at a constant rate: every 1/rate seconds one connection opens, sends one
// `GET <path>` with `Connection: close` (over TLS with --tls SNI, certificate not checked), reads
// to the end and closes. At a fixed rate every proxy handles the same connections per event-loop
// wake-up, so its CPU per connection compares across proxies and builds on a loaded machine, where
// a closed-loop client (wrk -c32) drives each at a different rate and batching.
//
// Usage: node paced-connections.mjs <port> <host> <path> <rate> <seconds> [tlsSni]
// Prints one JSON object: connections (completed with a response), failed, achievedRate.
import net from 'node:net';
import tls from 'node:tls';

const [port, host, path, rate, seconds, sni] = process.argv.slice(2);
const RATE = Number(rate);
const DURATION_MS = Number(seconds) * 1000;
const HEAD = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'latin1');
/** Connections still open past this many are not opened (a stalled proxy must not exhaust ports). */
const MAX_OPEN = 512;

let completed = 0;
let failed = 0;
let open = 0;
let firstError;

function one() {
  open++;
  let got = 0;
  const onConnect = () => s.write(HEAD);
  const s = sni
    ? tls.connect({ port: Number(port), host: '127.0.0.1', servername: sni, rejectUnauthorized: false }, onConnect)
    : net.connect({ port: Number(port), host: '127.0.0.1', noDelay: true }, onConnect);
  s.on('data', (c) => (got += c.length));
  s.on('error', (e) => (firstError ??= e.message));
  s.on('close', () => {
    open--;
    if (got > 0) completed++;
    else failed++;
  });
}

const start = performance.now();
let sent = 0;
await new Promise((resolve) => {
  const tick = () => {
    const elapsed = performance.now() - start;
    if (elapsed >= DURATION_MS) {
      resolve();
      return;
    }
    const due = Math.floor((elapsed * RATE) / 1000) + 1;
    for (; sent < due; sent++) {
      if (open < MAX_OPEN) one();
      else failed++;
    }
    setTimeout(tick, Math.max(0, ((sent * 1000) / RATE) - (performance.now() - start)));
  };
  tick();
});
// Let the last connections finish (bounded).
const until = performance.now() + 5000;
while (open > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
const secs = (performance.now() - start) / 1000;
process.stdout.write(`${JSON.stringify({ connections: completed, failed: failed + open, achievedRate: completed / Math.min(secs, Number(seconds)), ...(firstError ? { error: firstError } : {}) })}\n`);
process.exit(0);
