/**
 * The four-file egress gateway config passes https://edition.cnn.com
 * through the egress gateway's 443 listener by SNI — dnsmasq answers edition.cnn.com with a
 * loopback address where a TLS server listens on 443 — and refuses an SNI outside it, logged.
 * Also the TLS front end (split, oversized and silent hellos) and SNI spelling variants on the same listener.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { startDnsmasq, type Dnsmasq } from '../helpers/dns.js';
import { closeServer, listen, loopbackAddress, makeCerts, startTlsServer, tcpExchange, waitFor, type Certs, type TlsServer } from '../helpers/net.js';
import { FIXTURES, startGate, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const FIXTURE = join(FIXTURES, 'dataplane', '003-egress-gateway-4-files.yaml');
const ready = haveTool('dnsmasq') && haveTool('openssl') && haveTool('curl') && isRoot;
const skip = ready ? false : 'needs dnsmasq, openssl, curl and root (binds 443 on a loopback address)';
if (!ready && isCI) throw new Error(`l4-egress-gateway-003: ${skip}; CI=true`);

/** Captures a real ClientHello (from node:tls) for a given SNI, without completing a handshake. */
async function captureHello(servername: string | undefined): Promise<Buffer> {
  let resolveHello!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => (resolveHello = r));
  const server = createServer((s) => {
    s.once('data', (d) => {
      resolveHello(d);
      s.destroy();
    });
  });
  const port = await listen(server, '127.0.0.1');
  const c = tlsConnect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false });
  c.on('error', () => {});
  const b = await got;
  c.destroy();
  await closeServer(server);
  return b;
}

describe('four-file egress gateway config: TLS passthrough by SNI', { skip, concurrency: false }, () => {
  let dns: Dnsmasq;
  let certs: Certs;
  let upstream: TlsServer;
  let gate: TestGate;
  let upstreamIp: string;
  let sourceIp: string;
  let port443: number;

  before(async () => {
    upstreamIp = loopbackAddress();
    sourceIp = loopbackAddress();
    certs = makeCerts(['edition.cnn.com', 'www.naver.com']);
    upstream = await startTlsServer(upstreamIp, 443, certs);
    dns = await startDnsmasq({ 'edition.cnn.com': upstreamIp, 'www.naver.com': upstreamIp });
    gate = await startGate(['-f', FIXTURE, '--role', 'gateway', '--namespace', 'istio-system', '--labels', 'istio=egressgateway', '--port-map', '443=0,80=0', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8', '--source-address', sourceIp, '--tls-hello-timeout', '2000']);
    port443 = gate.port(443);
  });

  after(async () => {
    await gate?.stop();
    await upstream?.close();
    await dns?.stop();
    certs?.cleanup();
  });

  it('curl https://edition.cnn.com reaches the TLS upstream through the 443 listener, from the fixed source address, logged', async () => {
    const r = await run('curl', ['-sS', '--max-time', '30', '--cacert', certs.cert, '--resolve', `edition.cnn.com:${port443}:127.0.0.1`, `https://edition.cnn.com:${port443}/`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `peer=${sourceIp} sni=edition.cnn.com\n`);
    const rec = await gate.waitForLog((x) => x.requested_server_name === 'edition.cnn.com' && x.bytes_sent > 0);
    assert.equal(rec.upstream_cluster, 'outbound|443||edition.cnn.com');
    assert.equal(rec.upstream_host, `${upstreamIp}:443`);
    assert.match(rec.upstream_local_address ?? '', new RegExp(`^${sourceIp.replace(/\./g, '\\.')}:\\d+$`));
    assert.equal(rec.response_flags, '-');
    assert.equal(rec.route_name, 'istio-system/egressgateway:tls:0');
    assert.ok(rec.bytes_received > 100, 'ClientHello and request bytes counted');
    assert.ok(gate.metric('istio_tcp_connections_closed_total', 'destination_service="edition.cnn.com"') >= 1);
    assert.ok(gate.metric('istio_tcp_sent_bytes_total', 'destination_service="edition.cnn.com"') > 0);
  });

  it('openssl s_client -servername www.naver.com goes through too (second SNI route)', async () => {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port443}`, '-servername', 'www.naver.com', '-CAfile', certs.cert, '-verify_return_error', '-quiet'], { input: 'GET / HTTP/1.1\r\nHost: www.naver.com\r\n\r\n', timeoutMs: 30_000 });
    assert.match(r.stdout, /peer=.* sni=www\.naver\.com/);
  });

  it('refuses an SNI outside the routes before any upstream connection, with a logged reason', async () => {
    const before = upstream.peers.length;
    const r = await run('curl', ['-sS', '--max-time', '30', '-k', '--resolve', `evil.example.com:${port443}:127.0.0.1`, `https://evil.example.com:${port443}/`]);
    assert.notEqual(r.status, 0);
    const rec = await gate.waitForLog((x) => x.requested_server_name === 'evil.example.com');
    assert.equal(rec.tollgate_reason, 'sni_not_routed');
    assert.equal(rec.response_flags, 'NR');
    assert.equal(rec.upstream_host, null);
    assert.equal(upstream.peers.length, before, 'nothing reached the upstream');
    assert.ok(gate.metric('tollgate_denied_total', 'reason="sni_not_routed"') >= 1);
  });

  it('A24: a ClientHello split into 1..7-byte segments is reassembled and forwarded intact', async () => {
    const hello = await captureHello('edition.cnn.com');
    // Proof: the TLS upstream answers the reassembled hello with a ServerHello, and the access log
    // counts exactly the hello's bytes as received from the downstream.
    const s: Socket = connect({ host: '127.0.0.1', port: port443 });
    await new Promise((r) => s.once('connect', r));
    s.setNoDelay(true);
    let off = 0;
    let size = 1;
    while (off < hello.length) {
      const n = Math.min(size, hello.length - off);
      await new Promise((r) => s.write(hello.subarray(off, off + n), r));
      off += n;
      size = (size % 7) + 1;
      // One event-loop turn, not a timer: the in-process gateway reads this segment in the poll
      // phase before the next one is written, and a slow machine does not stretch ~100 timer
      // waits past the hello timeout.
      await new Promise((r) => setImmediate(r));
    }
    // The upstream TLS server now answers with its ServerHello: proof the hello arrived intact.
    const first = await new Promise<Buffer>((resolve, reject) => {
      s.once('data', resolve);
      s.once('error', reject);
      setTimeout(() => reject(new Error('no ServerHello')), 15_000); // a bound against a hang only
    });
    assert.equal(first[0], 0x16, 'a TLS handshake record came back from the upstream');
    s.destroy();
    const rec = await gate.waitForLog((x) => x.requested_server_name === 'edition.cnn.com' && x.bytes_received === hello.length);
    assert.equal(rec.upstream_cluster, 'outbound|443||edition.cnn.com');
  });

  it('A24: no SNI -> closed, reason sni_missing', async () => {
    const hello = await captureHello(undefined);
    const r = await tcpExchange('127.0.0.1', port443, hello);
    assert.equal(r.data, '');
    await gate.waitForLog((x) => x.tollgate_reason === 'sni_missing');
  });

  it('A24: oversized ClientHello (> 16 KiB) -> closed, reason tls_hello_too_large', async () => {
    const rec = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x50, 0x00]); // handshake length 0x5000 = 20 KiB
    const r = await tcpExchange('127.0.0.1', port443, rec);
    assert.equal(r.data, '');
    await gate.waitForLog((x) => x.tollgate_reason === 'tls_hello_too_large');
  });

  it('A24: non-TLS bytes -> closed, reason tls_not_tls', async () => {
    const r = await tcpExchange('127.0.0.1', port443, 'GET / HTTP/1.1\r\nHost: edition.cnn.com\r\n\r\n');
    assert.equal(r.data, '');
    await gate.waitForLog((x) => x.tollgate_reason === 'tls_not_tls');
  });

  it('A24: a silent client is closed after the hello timeout (2 s here, long enough for the split hello on a loaded machine; 15 s by default)', async () => {
    const t0 = Date.now();
    const r = await tcpExchange('127.0.0.1', port443, undefined, { timeoutMs: 15_000 });
    const took = Date.now() - t0;
    assert.notEqual(r.closedBy, 'timeout');
    assert.ok(took >= 1900 && took < 12_000, `closed after ${took} ms`);
    await gate.waitForLog((x) => x.tollgate_reason === 'tls_hello_timeout');
  });

  it('E2: SNI in upper case with a trailing dot matches the route (normalized)', async () => {
    const hello = await captureHello('EDITION.cnn.COM.');
    const s = connect({ host: '127.0.0.1', port: port443 });
    await new Promise((r) => s.once('connect', r));
    s.write(hello);
    const first = await new Promise<Buffer>((resolve, reject) => {
      s.once('data', resolve);
      s.once('close', () => reject(new Error('closed: SNI variant was not routed')));
    });
    assert.equal(first[0], 0x16);
    s.destroy();
  });

  it('E2: a non-ASCII (IDN, not punycode) SNI is refused as tls_bad_sni', async () => {
    // A hello whose SNI carries a raw non-ASCII byte (0xc3, the first byte of UTF-8 "é").
    const hello = await captureHello('xn--dition-bva.cnn.com');
    const i = hello.indexOf(Buffer.from('xn--dition-bva'));
    assert.ok(i > 0);
    hello[i] = 0xc3;
    const r = await tcpExchange('127.0.0.1', port443, hello);
    assert.equal(r.data, '');
    await gate.waitForLog((x) => x.tollgate_reason === 'tls_bad_sni');
  });

  it('E1: punycode SNI of a host outside the registry is refused (sni_not_routed)', async () => {
    const hello = await captureHello('xn--dition-bva.cnn.com');
    const r = await tcpExchange('127.0.0.1', port443, hello);
    assert.equal(r.data, '');
    await gate.waitForLog((x) => x.requested_server_name === 'xn--dition-bva.cnn.com' && x.tollgate_reason === 'sni_not_routed');
  });

  it('the HTTP listener (port 80) is handed to the HTTP engine (placeholder: 503 until it is wired)', async () => {
    const r = await tcpExchange('127.0.0.1', gate.port(80), 'GET / HTTP/1.1\r\nHost: edition.cnn.com\r\nConnection: close\r\n\r\n');
    assert.match(r.data, /^HTTP\/1\.1 (503|200|502)/);
  });

  it('counts every denial in tollgate_denied_total by reason', async () => {
    await waitFor(() => gate.metric('tollgate_denied_total', 'reason="tls_not_tls"') >= 1);
  });
});
