// CONNECT load generator (wrk cannot speak CONNECT): opens N tunnels through an explicit proxy,
// then runs keep-alive HTTP/1.1 GETs inside each tunnel, one outstanding request per tunnel, until
// the duration or the request cap is reached. Without --proxy it runs the same loop straight to
// the target (the direct path). With --new-tunnels each tunnel carries one request and is closed,
// and a new one is opened (tunnels per second). Bounded in time and count. Prints one JSON object.
// Usage: node connect-client.mjs --target host:port [--proxy 127.0.0.1:port] [--connect-addr 127.0.0.1]
//        [--path /1k] [--host up.bench.test] [--conns 32] [--duration 3] [--max-requests 2000000] [--new-tunnels]
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    target: { type: 'string' },
    proxy: { type: 'string' },
    'connect-addr': { type: 'string', default: '127.0.0.1' },
    path: { type: 'string', default: '/1k' },
    host: { type: 'string', default: 'up.bench.test' },
    conns: { type: 'string', default: '32' },
    duration: { type: 'string', default: '3' },
    'max-requests': { type: 'string', default: '2000000' },
    'new-tunnels': { type: 'boolean', default: false },
  },
});
const [thost, tport] = o.target.split(':');
const conns = Number(o.conns);
const durationMs = Number(o.duration) * 1000;
const maxRequests = Number(o['max-requests']);
const request = Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: ${o.host}\r\n\r\n`);
const CRLF2 = Buffer.from('\r\n\r\n');

let requests = 0;
let bodyBytes = 0;
let errors = 0;
let non200 = 0;
let running = true;
const errorSamples = new Set();
const noteError = (e) => {
  errors++;
  if (errorSamples.size < 5) errorSamples.add(String(e?.message ?? e));
};

function openTunnel() {
  return new Promise((resolve, reject) => {
    const [ph, pp] = o.proxy ? o.proxy.split(':') : [o['connect-addr'], tport];
    const s = net.connect({ host: ph, port: Number(pp) });
    s.setNoDelay(true);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('tunnel setup timeout'));
    }, 5000);
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.once('connect', () => {
      if (!o.proxy) {
        clearTimeout(t);
        resolve({ s, rest: Buffer.alloc(0) });
        return;
      }
      s.write(`CONNECT ${thost}:${tport} HTTP/1.1\r\nHost: ${thost}:${tport}\r\n\r\n`);
      let buf = Buffer.alloc(0);
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf(CRLF2);
        if (end < 0) return;
        s.off('data', onData);
        clearTimeout(t);
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, end).toString('latin1'))?.[1]);
        if (status !== 200) {
          s.destroy();
          reject(new Error(`CONNECT answered ${buf.subarray(0, Math.min(end, 80)).toString('latin1').split('\r\n')[0]}`));
          return;
        }
        resolve({ s, rest: buf.subarray(end + 4) });
      };
      s.on('data', onData);
    });
  });
}

/** Runs requests on one tunnel until stopped (or after `limit` requests); resolves when the tunnel is done. */
function drive({ s, rest }, limit = Infinity) {
  let done = 0;
  return new Promise((resolve) => {
    let buf = rest;
    let need = -1; // body bytes still expected; -1 = reading headers
    const send = () => {
      if (!running || requests >= maxRequests || done >= limit) {
        s.destroy();
        resolve();
        return;
      }
      s.write(request);
    };
    const onData = (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf(CRLF2);
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          if (!head.startsWith('HTTP/1.1 200')) non200++;
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!m) {
            noteError('response without content-length');
            s.destroy();
            resolve();
            return;
          }
          need = Number(m[1]);
          buf = buf.subarray(end + 4);
        }
        if (buf.length < need) {
          need -= buf.length;
          bodyBytes += buf.length;
          buf = Buffer.alloc(0);
          return;
        }
        bodyBytes += need;
        buf = buf.subarray(need);
        need = -1;
        requests++;
        done++;
        send();
        if (s.destroyed) return;
      }
    };
    s.on('data', onData);
    s.on('error', (e) => {
      if (running) noteError(e);
      resolve();
    });
    s.on('close', () => resolve());
    send();
  });
}

const hardStop = setTimeout(() => process.exit(3), durationMs + 15_000);
if (o['new-tunnels']) {
  // conns loops, each: open a tunnel, one request, close; repeat until the deadline.
  let tunnels = 0;
  let stalls = 0; // tunnel setups over 900 ms: a SYN retransmit (listen queue or port reuse), not proxy work
  let maxSetupMs = 0;
  const start = performance.now();
  setTimeout(() => (running = false), durationMs);
  const loop = async () => {
    while (running && requests < maxRequests) {
      let t;
      const t0 = performance.now();
      try {
        t = await openTunnel();
        const ms = performance.now() - t0;
        maxSetupMs = Math.max(maxSetupMs, ms);
        if (ms > 900) stalls++;
      } catch (e) {
        noteError(e);
        if (errors > 1000) return;
        continue;
      }
      tunnels++;
      await drive(t, 1);
    }
  };
  await Promise.all(Array.from({ length: conns }, loop));
  const seconds = (performance.now() - start) / 1000;
  clearTimeout(hardStop);
  process.stdout.write(`${JSON.stringify({ tunnels, requests, seconds, tunnelsPerSec: tunnels / seconds, rps: requests / seconds, maxSetupMs, stalls, non200, errors, errorSamples: [...errorSamples] })}\n`);
  process.exit(0);
}
const t0 = performance.now();
const settled = await Promise.allSettled(Array.from({ length: conns }, openTunnel));
const tunnels = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
for (const r of settled) if (r.status === 'rejected') noteError(r.reason);
const setupMs = performance.now() - t0;
const start = performance.now();
setTimeout(() => (running = false), durationMs);
await Promise.all(tunnels.map((t) => drive(t)));
const seconds = (performance.now() - start) / 1000;
clearTimeout(hardStop);
process.stdout.write(
  `${JSON.stringify({ tunnels: tunnels.length, setupMs, requests, bodyBytes, seconds, rps: requests / seconds, mbytesPerSec: bodyBytes / seconds / 1e6, non200, errors, errorSamples: [...errorSamples] })}\n`,
);
process.exit(0);
