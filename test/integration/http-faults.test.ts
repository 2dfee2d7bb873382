/**
 * Faults for the HTTP engine: connection refused, reset before headers, reset
 * mid-body (the client must see an aborted body, never a clean short one), malformed upstream
 * responses (502, upstream connection destroyed), client abort (upstream aborted, no fd leak),
 * DNS failure (NXDOMAIN from dnsmasq, and a resolver that never answers) within the DNS timeout,
 * and a slow reader (tollgate's memory stays bounded while a large body waits).
 */
import { after, before, describe, it } from 'node:test';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { fdCount, rawClient, rst, startRawUpstream, takeRequestPath, type RawConn, type RawUpstream } from '../helpers/http.js';
import { freeTcpPort, startDnsmasq, startFakeDns, type Dnsmasq, type FakeDns } from '../helpers/dns.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, spawnGate, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('dnsmasq');
const skip = ready ? false : 'needs curl and dnsmasq';
if (!ready && isCI) throw new Error(`http-faults: ${skip}; CI=true`);

const BIG = 200 * 1024 * 1024;
/** A chunked body with chunk extensions and trailers (31 bytes of data). */
const CHUNKS_BODY = '5;n=v\r\nhello\r\n1a;q="a b"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum:  1 \r\n\r\n';

/** The upstream connection that received the last request for each path. */
const servedBy = new Map<string, RawConn>();

/** The scripted upstream: what it does depends on the request path. */
function behave(c: RawConn): void {
  const path = takeRequestPath(c);
  if (path === undefined) return;
  servedBy.set(path, c);
  const s = c.socket;
  if (path.startsWith('/reset-before')) return rst(s);
  if (path.startsWith('/close-before')) return void s.end();
  if (path.startsWith('/reset-mid')) {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'m'.repeat(1000)}`);
    setTimeout(() => rst(s), 50);
    return;
  }
  if (path.startsWith('/close-mid')) {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'m'.repeat(1000)}`);
    setTimeout(() => s.end(), 50);
    return;
  }
  if (path.startsWith('/malformed')) return void s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  if (path.startsWith('/garbage')) return void s.write('HELLO WORLD\r\n\r\n');
  if (path.startsWith('/badchunk')) {
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => s.write('zz\r\nhello\r\n0\r\n\r\n'), 50);
    return;
  }
  if (path.startsWith('/chunks')) {
    // Written in pieces that cut chunk lines, data and the trailer section: the proxy reads them apart.
    s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKS_BODY.slice(0, 9)}`);
    const cuts = [9, 17, 24, 55, 58, 72, CHUNKS_BODY.length];
    let i = 0;
    const next = (): void => {
      if (i + 1 >= cuts.length || s.destroyed) return;
      s.write(CHUNKS_BODY.slice(cuts[i], cuts[i + 1]));
      i++;
      setTimeout(next, 20);
    };
    setTimeout(next, 20);
    return;
  }
  if (path.startsWith('/hang')) return;
  if (path.startsWith('/big')) {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
    const chunk = Buffer.alloc(1024 * 1024, 0x62);
    let sent = 0;
    const pump = (): void => {
      while (sent < BIG) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
    return;
  }
  s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
}

const se = (name: string, host: string, ip: string, port: number): string => targetPortEntry(name, 'edge', host, [ip], port);

function config(up: RawUpstream, deadIp: string, deadPort: number): string {
  return (
    se('faulty', 'faulty.test', up.host, up.port) +
    se('refused', 'refused.test', deadIp, deadPort) +
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: edge}
spec:
  hosts: [nx.test, silent.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
${egressGateway(['*'], 'edge', 'gw')}${virtualService('all', 'edge', ['faulty.test', 'refused.test', 'nx.test', 'silent.test'], ['gw'], `http:
- match: [{authority: {exact: faulty.test}}]
  route: [{destination: {host: faulty.test, port: {number: 80}}}]
- match: [{authority: {exact: refused.test}}]
  route: [{destination: {host: refused.test, port: {number: 80}}}]
- match: [{authority: {exact: nx.test}}]
  route: [{destination: {host: nx.test, port: {number: 80}}}]
- match: [{authority: {exact: silent.test}}]
  route: [{destination: {host: silent.test, port: {number: 80}}}]`)}`
  );
}

describe('HTTP engine: upstream and client faults', { skip, concurrency: false }, () => {
  let up: RawUpstream;
  let gate: TestGate;
  let port: number;
  let dns: Dnsmasq;
  let fake: FakeDns;
  let cfg: { path: string; cleanup(): void };
  const deadIp = loopbackAddress();
  let deadPort: number;

  const get = (host: string, path: string): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

  before(async () => {
    up = await startRawUpstream(loopbackAddress(), behave);
    deadPort = await freeTcpPort();
    dns = await startDnsmasq({ 'nx.test': '' }); // "--address=/nx.test/" answers NXDOMAIN
    fake = await startFakeDns();
    fake.set('silent.test', () => 'drop');
    cfg = tempConfig(config(up, deadIp, deadPort));
    // Two resolvers: dnsmasq (NXDOMAIN) first; c-ares moves to the silent one only on timeouts.
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS, '--dns-server', dns.server, '--dns-timeout', '300'], {
      httpHandler: httpEngine({ lingerMs: 300 }),
    });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await up?.close();
    await dns?.stop();
    await fake?.close();
    cfg?.cleanup();
  });

  it('connection refused -> 503 UF upstream_connect_refused, at once (retried per Istio defaults)', async () => {
    const t0 = Date.now();
    const c = await rawClient('127.0.0.1', port);
    c.send(get('refused.test', '/'));
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 503);
    assert.equal(r!.headers['x-tollgate-reason'], 'upstream_connect_refused');
    assert.ok(Date.now() - t0 < 5000, 'well before the 10 s connect timeout: the refusal itself ends the attempt');
    const rec = await gate.waitForLog((x) => x.authority === 'refused.test');
    assert.equal(rec.response_flags, 'UF,URX', 'connect-failure was retried (2 attempts) before giving up');
    assert.equal(rec.upstream_host, `${deadIp}:${deadPort}`);
  });

  it('reset before the response head -> 503 UC upstream_reset_before_response', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/reset-before'));
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 503);
    const rec = await gate.waitForLog((x) => x.path === '/reset-before');
    assert.equal(rec.response_flags, 'UC');
    assert.equal(rec.tollgate_reason, 'upstream_reset_before_response');
  });

  it('upstream closes before the response head -> 503 UC', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/close-before'));
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 503);
  });

  for (const path of ['/reset-mid', '/close-mid']) {
    it(`${path}: the client sees an aborted body, never a clean short one`, async () => {
      const c = await rawClient('127.0.0.1', port);
      c.send(get('faulty.test', path));
      assert.ok(await c.waitClose(3000), 'connection ended');
      const data = c.data();
      c.destroy();
      assert.match(data, /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 100000\r\n/);
      const body = data.slice(data.indexOf('\r\n\r\n') + 4);
      assert.ok(body.length < 100000, 'short body');
      assert.equal(c.how(), 'reset', 'the connection was reset, not closed cleanly');
      const rec = await gate.waitForLog((x) => x.path === path);
      assert.equal(rec.response_flags, 'UC');
      assert.equal(rec.tollgate_reason, 'upstream_reset_mid_response');
      // curl reports the transfer as failed too
      const cr = await run('curl', ['-sS', '-o', '/dev/null', '--max-time', '5', '-H', 'Host: faulty.test', `http://127.0.0.1:${port}${path}`]);
      assert.notEqual(cr.status, 0, 'curl exits with an error');
    });
  }

  it('malformed upstream response (CL + TE) -> 502 UPE, the upstream connection is destroyed', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/malformed'));
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 502);
    const rec = await gate.waitForLog((x) => x.path === '/malformed');
    assert.equal(rec.response_flags, 'UPE');
    assert.equal(rec.tollgate_reason, 'upstream_protocol_error');
    assert.match(rec.response_code_details ?? '', /TG_HTTP_CL_TE/);
    const used = servedBy.get('/malformed')!;
    await waitFor(() => used.closed, 2000, 'the upstream connection to be closed by the proxy');
  });

  it('garbage status line -> 502 UPE', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/garbage'));
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 502);
  });

  it('bad chunk in an upstream body after the head went out -> downstream aborted', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/badchunk'));
    assert.ok(await c.waitClose(3000));
    assert.equal(c.how(), 'reset');
    assert.doesNotMatch(c.data(), /0\r\n\r\n$/, 'no last chunk: the body is visibly cut');
    assert.doesNotMatch(c.data(), /zz/, 'the invalid chunk line never reaches the client');
    c.destroy();
    const rec = await gate.waitForLog((x) => x.path === '/badchunk');
    assert.equal(rec.response_flags, 'UPE');
  });

  it('a chunked response reaches an HTTP/1.1 client as the upstream framed it (extensions, trailers), whatever the reads', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/chunks'));
    await waitFor(() => c.data().endsWith('X-Sum:  1 \r\n\r\n'), 5000, 'the whole response');
    const all = c.data();
    c.destroy();
    assert.match(all.slice(0, all.indexOf('\r\n\r\n') + 2), /\r\nTransfer-Encoding: chunked\r\n/i);
    assert.equal(all.slice(all.indexOf('\r\n\r\n') + 4), CHUNKS_BODY);
    const rec = await gate.waitForLog((x) => x.path === '/chunks');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.bytes_sent, 31, 'bytes_sent counts the body data, not its framing');
  });

  it('client abort -> the upstream connection is aborted too, logged DC', async () => {
    servedBy.delete('/hang');
    const c = await rawClient('127.0.0.1', port);
    c.send(get('faulty.test', '/hang'));
    const used = await waitFor(() => servedBy.get('/hang'), 2000, 'the request to reach the upstream');
    c.destroy();
    const rec = await gate.waitForLog((x) => x.path === '/hang');
    assert.equal(rec.response_flags, 'DC');
    assert.equal(rec.response_code, 0);
    await waitFor(() => used.closed, 2000, 'the upstream connection to be aborted');
  });

  it('no fd leak over many aborted and failed exchanges', async () => {
    // warm up (pool, lazily created things)
    for (let i = 0; i < 3; i++) {
      const c = await rawClient('127.0.0.1', port);
      c.send(get('faulty.test', '/ok'));
      await c.responses(1);
      c.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    const before = fdCount();
    for (let i = 0; i < 25; i++) {
      const a = await rawClient('127.0.0.1', port);
      a.send(get('faulty.test', '/hang'));
      await new Promise((r) => setTimeout(r, 5));
      a.destroy();
      const b = await rawClient('127.0.0.1', port);
      b.send(get('faulty.test', '/reset-mid'));
      await b.waitClose(3000);
      b.destroy();
      const d = await rawClient('127.0.0.1', port);
      d.send(get('refused.test', '/'));
      await d.responses(1);
      d.destroy();
    }
    await waitFor(() => fdCount() <= before + 4, 5000, `fds back to ${before}`).catch((e: Error) => {
      throw new Error(`${e.message}; now ${fdCount()}:\n${execSync(`ss -tanp | grep pid=${process.pid}, | awk '{print $1, $4, $5}' | sort | uniq -c | sort -rn | head -12`).toString()}`);
    });
  });

  it('DNS failure: NXDOMAIN -> 503 DF dns_resolution_failed', async () => {
    const c = await rawClient('127.0.0.1', port);
    const t0 = Date.now();
    c.send(get('nx.test', '/'));
    const [r] = await c.responses(1, 5000);
    c.destroy();
    assert.equal(r!.status, 503);
    assert.ok(Date.now() - t0 < 2000);
    const rec = await gate.waitForLog((x) => x.authority === 'nx.test');
    assert.match(rec.response_flags, /^DF/);
    assert.equal(rec.tollgate_reason, 'dns_resolution_failed');
  });

  it('DNS failure: a resolver that never answers -> 503 DF within the DNS timeout', async () => {
    const g = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS, '--dns-server', fake.server, '--dns-timeout', '300']);
    try {
      const c = await rawClient('127.0.0.1', g.port(80));
      const t0 = Date.now();
      c.send(get('silent.test', '/'));
      const [r] = await c.responses(1, 8000);
      const took = Date.now() - t0;
      c.destroy();
      assert.equal(r!.status, 503);
      // 300 ms x 2 tries per query, and the connect-failure retries of the route ask again.
      assert.ok(took < 5000, `took ${took} ms`);
    } finally {
      await g.stop();
    }
  });

  it('slow reader: a 200 MiB body waiting on a client that does not read keeps tollgate memory bounded', async () => {
    const child = spawnGate(['-f', cfg.path, '--role', 'gateway', '--namespace', 'edge', '--labels', 'istio=egressgateway', '--port-map', `80=${await freeTcpPort()}`, '--listen-address-override', '127.0.0.1', '--admin', 'off', '--log-level', 'info']);
    try {
      await child.waitForStderr('tollgate running');
      const m = /-> 127\.0\.0\.1:(\d+)/.exec(child.stderr.join(''));
      const p = Number(m![1]);
      const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.child.pid}/status`, 'utf8'))![1]) * 1024;
      const base = rss();
      const c = await rawClient('127.0.0.1', p);
      c.socket.pause();
      c.send(get('faulty.test', '/big'));
      await new Promise((r) => setTimeout(r, 1500));
      const grown = rss() - base;
      assert.ok(grown < 48 * 1024 * 1024, `tollgate RSS grew ${Math.round(grown / 1048576)} MiB with a stalled reader`);
      // Now read it all: the body arrives complete.
      let got = 0;
      c.socket.on('data', (d: Buffer) => (got += d.length));
      c.socket.resume();
      await waitFor(() => got >= BIG, 20_000, 'the whole body');
      c.destroy();
    } finally {
      child.kill();
      await child.exit();
    }
  });
});
