/**
 * SIGTERM under keep-alive HTTP load (a child `tollgate run`): every request the clients sent is
 * accounted for — it got a complete response, or its connection was closed cleanly (FIN) before
 * any byte of a response — every served request has its access-log line, responses during the
 * drain carry `Connection: close`, idle keep-alive connections are closed, and the process exits as
 * soon as the in-flight requests are done (idle pooled upstream connections do not hold it open).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { freeTcpPort } from '../helpers/dns.js';
import { hostRequest, parseResponse, startHttpUpstream } from '../helpers/http.js';
import { egressGateway, externalEntry, httpEndpoint, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { spawnGate, startGateWithConfig, tempConfig } from '../helpers/tollgate.js';

const DRAIN_CONFIG = (up: { host: string; port: number }): string =>
  externalEntry('drain', [httpEndpoint(up.host, up.port)]) + egressGateway(['drain.test']) + virtualService('drain', 'egress', ['drain.test'], ['egress'], 'http:\n- route: [{destination: {host: drain.test}}]');
const GATEWAY = ['--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway'];

type Outcome =
  | { readonly kind: 'served'; readonly id: string; readonly close: boolean; readonly afterTerm: boolean }
  | { readonly kind: 'closed-before-response'; readonly id: string }
  | { readonly kind: 'broken'; readonly id: string; readonly detail: string };

interface LoadClient {
  readonly outcomes: Outcome[];
  /** Connections the proxy refused (ECONNREFUSED: its listener is closed). */
  refused: number;
  /** Keep-alive connections the proxy closed while no request was on them. */
  closedIdle: number;
  connections: number;
  done: Promise<void>;
}

/**
 * One client loop: keep-alive requests on one connection at a time; a response with
 * `Connection: close` (or a close by the proxy) ends the connection and the loop opens the next.
 * `thinkMs` between requests leaves the connection idle. Bounded by `maxRequests` and `deadline`.
 */
function loadClient(port: number, name: string, thinkMs: () => number, termAt: () => number, deadline: number, maxRequests: number): LoadClient {
  const c: LoadClient = { outcomes: [], refused: 0, closedIdle: 0, connections: 0, done: Promise.resolve() };
  let seq = 0;
  const oneConnection = (): Promise<'again' | 'stop'> =>
    new Promise((resolve) => {
      const s: Socket = connect({ host: '127.0.0.1', port });
      let buf = '';
      let inflight: string | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: 'again' | 'stop'): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        s.destroy();
        resolve(r);
      };
      const send = (): void => {
        if (settled) return;
        if (Date.now() > deadline || seq >= maxRequests) return finish('stop');
        inflight = `${name}-${seq++}`;
        buf = '';
        s.write(`GET /drain/${inflight} HTTP/1.1\r\nHost: drain.test\r\n\r\n`);
      };
      const lost = (how: string): void => {
        if (inflight === undefined) {
          c.closedIdle++;
        } else if (buf.length === 0 && how === 'end') {
          c.outcomes.push({ kind: 'closed-before-response', id: inflight });
        } else {
          c.outcomes.push({ kind: 'broken', id: inflight, detail: `${how} after ${buf.length} bytes: ${JSON.stringify(buf.slice(0, 200))}` });
        }
        inflight = undefined;
        finish('again');
      };
      s.once('connect', () => {
        c.connections++;
        send();
      });
      s.on('data', (d: Buffer) => {
        if (inflight === undefined) {
          c.outcomes.push({ kind: 'broken', id: '-', detail: `bytes on an idle connection: ${d.toString('latin1').slice(0, 200)}` });
          return finish('again');
        }
        buf += d.toString('latin1');
        const r = parseResponse(buf);
        if (!r) return;
        const close = (r.headers['connection'] ?? '').toLowerCase() === 'close';
        const ok = r.status === 200 && r.rest === '';
        if (!ok) c.outcomes.push({ kind: 'broken', id: inflight, detail: `status ${r.status}, rest ${JSON.stringify(r.rest)}` });
        else c.outcomes.push({ kind: 'served', id: inflight, close, afterTerm: termAt() > 0 });
        inflight = undefined;
        if (close) return finish('again');
        const wait = thinkMs();
        if (wait <= 0) send();
        else timer = setTimeout(send, wait);
      });
      s.on('end', () => lost('end'));
      s.on('error', (e: NodeJS.ErrnoException) => {
        if (c.connections === 0 || (inflight === undefined && buf === '' && e.code === 'ECONNREFUSED')) {
          c.refused++;
          return finish('stop');
        }
        lost(`error ${e.code ?? e.message}`);
      });
    });
  c.done = (async () => {
    for (let i = 0; i < 10_000 && Date.now() < deadline && seq < maxRequests; i++) {
      const before = c.connections;
      if ((await oneConnection()) === 'stop') return;
      if (c.connections === before && c.refused > 0) return;
    }
  })();
  return c;
}

describe('SIGTERM drain under keep-alive load (child process)', () => {
  it('every request is served (with a log line) or closed cleanly before any byte; exit well before the upstream idle timeout', async () => {
    const up = await startHttpUpstream(loopbackAddress(), 0, (_req, res, _body, seen) => {
      // Some responses take a while, so requests are in flight when SIGTERM arrives.
      const body = seen.url;
      const delay = seen.url.endsWith('0') ? 150 : 5;
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
      }, delay);
    });
    const cfg = tempConfig(DRAIN_CONFIG(up));
    const port = await freeTcpPort();
    // The upstream idle timeout is the engine default (15 s): pooled connections must not hold the exit.
    const gate = spawnGate(['-f', cfg.path, ...GATEWAY, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--admin', 'off', '--drain-timeout', '20000', '--log-level', 'info']);
    try {
      await gate.waitForStderr('tollgate running');
      let termAt = 0;
      const deadline = Date.now() + 30_000;
      const clients: LoadClient[] = [];
      for (let i = 0; i < 24; i++) {
        // Three kinds of connection: back-to-back requests, short pauses, and mostly idle ones.
        const think = i % 3 === 0 ? () => 0 : i % 3 === 1 ? () => Math.floor(Math.random() * 20) : () => 100 + Math.floor(Math.random() * 200);
        clients.push(loadClient(port, `c${i}`, think, () => termAt, deadline, 400));
      }
      // Load for a while, then SIGTERM with requests in flight and idle keep-alive connections open.
      await new Promise((r) => setTimeout(r, 1500));
      const servedBefore = clients.reduce((n, c) => n + c.outcomes.length, 0);
      assert.ok(servedBefore > 20, `load is running (${servedBefore} requests before SIGTERM)`);
      termAt = Date.now();
      gate.kill('SIGTERM');
      const code = await gate.exit();
      const exitMs = Date.now() - termAt;
      await Promise.all(clients.map((c) => c.done));
      assert.equal(code, 0, gate.stderr.join(''));

      const outcomes = clients.flatMap((c) => c.outcomes);
      const broken = outcomes.filter((o) => o.kind === 'broken');
      assert.deepEqual(broken, [], 'no request reset, cut or answered with an error');
      const served = outcomes.filter((o): o is Extract<Outcome, { kind: 'served' }> => o.kind === 'served');
      const logged = new Set(gate.records().map((r) => r.path));
      const unlogged = served.filter((o) => !logged.has(`/drain/${o.id}`));
      assert.deepEqual(unlogged.map((o) => o.id), [], 'every served request has an access-log line');
      // After SIGTERM every connection ends: a response says Connection: close, or an idle one is closed.
      const closes = served.filter((o) => o.afterTerm && o.close).length;
      const idleClosed = clients.reduce((n, c) => n + c.closedIdle, 0);
      assert.ok(closes > 0, `responses during the drain carry Connection: close (${served.filter((o) => o.afterTerm).length} served after SIGTERM)`);
      assert.ok(idleClosed > 0, 'idle keep-alive connections were closed by the drain');
      // Bound: well under the 15 s upstream idle timeout that held the process open, with room for a loaded box.
      assert.ok(exitMs < 8000, `exited ${exitMs} ms after SIGTERM`);
      const refusedLines = gate.records().filter((r) => r.tollgate_reason === 'drain_closed_connection');
      const closedBefore = outcomes.filter((o) => o.kind === 'closed-before-response').length;
      // A request that crossed the drain's FIN reached the proxy (it reads until the client closes): logged too.
      assert.equal(refusedLines.length, closedBefore, 'every request closed before a response has its refusal line');
      gate.stderr.push(`served ${served.length}, closed before a response ${closedBefore} (logged ${refusedLines.length}), idle closed ${idleClosed}, refused ${clients.reduce((n, c) => n + c.refused, 0)}, exit ${exitMs} ms\n`);
      process.stderr.write(`# drain: ${gate.stderr.at(-1)}`);
    } finally {
      gate.kill('SIGKILL');
      await up.close();
      cfg.cleanup();
    }
  });
});

describe('drain: the edges of the race, one at a time', () => {
  it('a request that crosses the FIN of an idle keep-alive connection the drain closed is logged, and nothing is answered', async () => {
    const up = await startHttpUpstream(loopbackAddress());
    const cfg = tempConfig(DRAIN_CONFIG(up));
    const port = await freeTcpPort();
    const gate = spawnGate(['-f', cfg.path, ...GATEWAY, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--admin', 'off', '--drain-timeout', '10000']);
    try {
      await gate.waitForStderr('tollgate running');
      // A half-open client can still send after the proxy's FIN: the request a busy client had
      // already written when the FIN arrived.
      const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      let got = '';
      let ended = false;
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('end', () => (ended = true));
      s.on('error', () => undefined);
      s.write('GET /first HTTP/1.1\r\nHost: drain.test\r\n\r\n');
      await waitFor(() => parseResponse(got), 5000, 'first response');
      const first = parseResponse(got)!;
      assert.equal(first.status, 200);
      assert.notEqual(first.headers['connection'], 'close');
      got = '';
      gate.kill('SIGTERM');
      await waitFor(() => ended, 5000, 'the drain closes the idle connection');
      s.write('GET /late HTTP/1.1\r\nHost: drain.test\r\n\r\n');
      s.end();
      assert.equal(await gate.exit(), 0);
      assert.equal(got, '', 'nothing answered after the FIN');
      const late = gate.records().find((r) => r.path === '/late');
      assert.ok(late, `the late request is logged: ${gate.stdout.join('\n')}`);
      assert.equal(late.tollgate_reason, 'drain_closed_connection');
      assert.equal(late.response_flags, 'OM');
      assert.equal(late.method, 'GET');
      assert.equal(late.authority, 'drain.test');
      assert.equal(up.requests.filter((r) => r.url === '/late').length, 0, 'never sent upstream');
    } finally {
      gate.kill('SIGKILL');
      await up.close();
      cfg.cleanup();
    }
  });

  it('upstream connections released by requests that finish during the drain are closed, not pooled (they held the process open for the idle timeout)', async () => {
    const up = await startHttpUpstream(loopbackAddress());
    const { gate, cfg } = await startGateWithConfig(DRAIN_CONFIG(up), [...GATEWAY, '--port-map', '80=0']);
    try {
      const port = gate.port(80);
      // 8 requests in flight when the drain starts; each releases its upstream connection after it.
      const inflight = Array.from({ length: 8 }, (_, i) => hostRequest(port, 'drain.test', { path: `/slow/400?${i}`, timeoutMs: 10_000 }));
      await waitFor(() => up.sockets.size >= 8, 5000, '8 upstream connections');
      const stopped = gate.tg.stop(10_000);
      const results = await Promise.all(inflight);
      assert.deepEqual(results.map((r) => r.status), Array(8).fill(200));
      assert.ok(results.every((r) => r.headers['connection'] === 'close'), 'responses during the drain say Connection: close');
      await stopped;
      // The engine default keeps an idle upstream connection 15 s; none may be left for the process to wait on.
      await waitFor(() => up.sockets.size === 0, 2000, `upstream connections closed (${up.sockets.size} open)`);
    } finally {
      await gate.stop();
      await up.close();
      cfg.cleanup();
    }
  });
});
