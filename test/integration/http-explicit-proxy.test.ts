/**
 * Explicit proxy, plain HTTP: absolute-form requests (`curl -x http://proxy http://host/`,
 * HTTP_PROXY clients) are decided like CONNECT — registry host AND port (or the egress router's
 * http-proxy allow/deny list) — on the target's authority, then forwarded by the HTTP engine
 * (origin-form, Host = target authority, pool, source address, access log, istio_requests_total).
 * Origin-form requests on the proxy port -> 400; a CONNECT after absolute-form requests on the same
 * connection still goes to the CONNECT code; keep-alive across hosts, each request checked.
 * Absolute-form vs Host, registry denials, SSRF guard.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freeTcpPort, startDnsmasq, type Dnsmasq } from '../helpers/dns.js';
import { header, parseResponse, rawClient, startHttpUpstream, type HttpUpstream, type SeenRequest } from '../helpers/http.js';
import { loopbackAddress } from '../helpers/net.js';
import { httpProxyRouter } from '../helpers/istio-yaml.js';
import { HTTP_PROXY_ROUTER_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const haveCurl = haveTool('curl');
const haveDnsmasq = haveTool('dnsmasq');
if (isCI && (!haveCurl || !haveDnsmasq)) throw new Error('http-explicit-proxy: needs curl and dnsmasq; CI=true, so this is a failure');
const skipCurl = haveCurl ? false : 'needs curl (not installed)';
const skipAcl = haveCurl && haveDnsmasq ? false : 'needs curl and dnsmasq (not installed)';

function seenBody(stdout: string): SeenRequest {
  return JSON.parse(stdout) as SeenRequest;
}

describe('explicit proxy: absolute-form HTTP against the registry', { skip: skipCurl, concurrency: false }, () => {
  let up: HttpUpstream;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  let port: number;
  let upIp: string;
  let srcIp: string;
  let proxy: string;

  before(async () => {
    upIp = loopbackAddress();
    srcIp = loopbackAddress();
    up = await startHttpUpstream(upIp);
    cfg = tempConfig(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: allowed, namespace: default }
spec:
  hosts: [allowed.test, second.test]
  ports:
  - { number: ${up.port}, name: http, protocol: HTTP }
  resolution: STATIC
  endpoints: [{ address: ${upIp} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: tls-only, namespace: default }
spec:
  hosts: [tlsonly.test]
  ports:
  - { number: ${up.port}, name: tls, protocol: TLS }
  resolution: STATIC
  endpoints: [{ address: ${upIp} }]
`);
    port = await freeTcpPort();
    proxy = `http://127.0.0.1:${port}`;
    gate = await startGate(['-f', cfg.path, '--explicit-proxy', `127.0.0.1:${port}`, '--connect-ports', `443,${up.port}`, '--source-address', srcIp]);
  });

  after(async () => {
    await gate?.stop();
    await up?.close();
    cfg?.cleanup();
  });

  it('curl -x reaches an allowed host: origin-form upstream, Host = target authority, source address, logged, counted', async () => {
    const before = gate.metric('istio_requests_total', 'destination_service="allowed.test"');
    const r = await run('curl', ['-sS', '--max-time', '5', '-x', proxy, `http://allowed.test:${up.port}/x?q=1`]);
    assert.equal(r.status, 0, r.stderr);
    const seen = seenBody(r.stdout);
    assert.equal(seen.url, '/x?q=1', 'request line is origin-form');
    assert.equal(header(seen, 'host'), `allowed.test:${up.port}`);
    assert.equal(header(seen, 'proxy-connection'), undefined, 'hop-by-hop proxy header dropped');
    assert.equal(seen.peer, srcIp);
    const rec = await gate.waitForLog((x) => x.method === 'GET' && x.authority === `allowed.test:${up.port}` && x.response_code === 200);
    assert.equal(rec.upstream_cluster, `outbound|${up.port}||allowed.test`);
    assert.equal(rec.upstream_host, `${upIp}:${up.port}`);
    assert.ok(rec.upstream_local_address?.startsWith(`${srcIp}:`));
    assert.equal(rec.path, '/x?q=1');
    assert.equal(gate.metric('istio_requests_total', 'destination_service="allowed.test"'), before + 1);
  });

  it('a host outside the registry -> 403 proxy_not_in_registry with x-tollgate-reason, logged, nothing sent upstream', async () => {
    const n = up.requests.length;
    const r = await run('curl', ['-sS', '-i', '--max-time', '5', '-x', proxy, `http://other.test:${up.port}/`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 403 /);
    assert.match(r.stdout, /x-tollgate-reason: proxy_not_in_registry/i);
    const rec = await gate.waitForLog((x) => x.authority === `other.test:${up.port}`);
    assert.equal(rec.response_code, 403);
    assert.equal(rec.response_flags, 'NR');
    assert.equal(rec.tollgate_reason, 'proxy_not_in_registry');
    assert.equal(up.requests.length, n);
  });

  it('a registry host on an undeclared port -> 403 (default port 80 included)', async () => {
    const other = up.port === 65535 ? up.port - 1 : up.port + 1;
    for (const url of [`http://allowed.test:${other}/`, 'http://allowed.test/']) {
      const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-x', proxy, url]);
      assert.equal(r.stdout, '403', url);
    }
    await gate.waitForLog((x) => x.authority === `allowed.test:${other}` && x.tollgate_reason === 'proxy_not_in_registry');
    await gate.waitForLog((x) => x.authority === 'allowed.test' && x.tollgate_reason === 'proxy_not_in_registry');
  });

  it('plain HTTP to a TLS registry port without TLS origination -> 403 proxy_tls_not_originated', async () => {
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-x', proxy, `http://tlsonly.test:${up.port}/`]);
    assert.equal(r.stdout, '403');
    const rec = await gate.waitForLog((x) => x.authority === `tlsonly.test:${up.port}`);
    assert.equal(rec.tollgate_reason, 'proxy_tls_not_originated');
    assert.equal(rec.response_flags, 'BLOCKED');
  });

  it('keep-alive: allowed, denied and allowed hosts on one client connection, each checked', async () => {
    const n = up.requests.length;
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n', '--max-time', '5', '-x', proxy, `http://allowed.test:${up.port}/one`, `http://nope.test:${up.port}/two`, `http://second.test:${up.port}/three`]);
    assert.equal(r.status, 0, r.stderr);
    // one new connection for the first URL, none for the others (re-used)
    assert.deepEqual(r.stdout.trim().split('\n'), ['200 1', '403 0', '200 0']);
    const got = up.requests.slice(n);
    assert.deepEqual(
      got.map((s) => [s.url, header(s, 'host')]),
      [
        ['/one', `allowed.test:${up.port}`],
        ['/three', `second.test:${up.port}`],
      ],
    );
    const one = await gate.waitForLog((x) => x.path === '/one');
    const two = await gate.waitForLog((x) => x.path === '/two');
    const three = await gate.waitForLog((x) => x.path === '/three');
    assert.equal(two.tollgate_reason, 'proxy_not_in_registry');
    assert.equal(three.upstream_cluster, `outbound|${up.port}||second.test`);
    assert.equal(one.downstream_remote_address, two.downstream_remote_address);
    assert.equal(one.downstream_remote_address, three.downstream_remote_address);
  });

  it('absolute-form target vs Host: routed, checked and forwarded on the target authority only', async () => {
    const c = await rawClient('127.0.0.1', port);
    try {
      c.send(`GET http://allowed.test:${up.port}/mismatch HTTP/1.1\r\nHost: other.test\r\n\r\n`);
      c.send(`GET http://other.test:${up.port}/sneaky HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\n`);
      const [ok, denied] = await c.responses(2);
      assert.equal(ok!.status, 200);
      const seen = JSON.parse(ok!.body) as SeenRequest;
      assert.equal(seen.url, '/mismatch');
      assert.equal(header(seen, 'host'), `allowed.test:${up.port}`);
      assert.equal(denied!.status, 403);
      assert.ok(!up.requests.some((s) => s.url === '/sneaky'));
    } finally {
      c.destroy();
    }
  });

  it('origin-form on the proxy listener -> 400 proxy_not_absolute_form', async () => {
    const c = await rawClient('127.0.0.1', port);
    try {
      // first request absolute-form (handed to the HTTP engine), then an origin-form one
      c.send(`GET http://allowed.test:${up.port}/first HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\nGET /x HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\n`);
      const [a, b] = await c.responses(2);
      assert.equal(a!.status, 200);
      assert.equal(b!.status, 400);
    } finally {
      c.destroy();
    }
    // as the very first request too
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${port}/x`]);
    assert.equal(r.stdout, '400');
    await gate.waitForLog((x) => x.tollgate_reason === 'proxy_not_absolute_form' && x.path === '/x');
  });

  it('a CONNECT after absolute-form requests on the same connection goes to the CONNECT code', async () => {
    const c = await rawClient('127.0.0.1', port);
    try {
      c.send(`GET http://allowed.test:${up.port}/before HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\n`);
      const [a] = await c.responses(1);
      assert.equal(a!.status, 200);
      const mark = c.data().length;
      c.send(`CONNECT allowed.test:${up.port} HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\n`);
      const established = await waitUntil(() => c.data().slice(mark).includes('\r\n\r\n'));
      assert.ok(established);
      assert.match(c.data().slice(mark), /^HTTP\/1\.1 200 Connection established\r\n\r\n/);
      const mark2 = c.data().length;
      // through the tunnel (HTTP registry port: non-TLS bytes allowed), origin-form to the upstream
      c.send('GET /tunneled HTTP/1.1\r\nHost: allowed.test\r\n\r\n');
      assert.ok(await waitUntil(() => parseResponse(c.data().slice(mark2)) !== undefined));
      const res = parseResponse(c.data().slice(mark2))!;
      assert.equal(res.status, 200);
      assert.equal((JSON.parse(res.body) as SeenRequest).url, '/tunneled');
    } finally {
      c.destroy();
    }
    const rec = await gate.waitForLog((x) => x.method === 'CONNECT' && x.authority === `allowed.test:${up.port}`);
    assert.equal(rec.response_code, 200);
    assert.equal(rec.upstream_cluster, `outbound|${up.port}||allowed.test`);
  });

  it('a CONNECT refused after absolute-form requests is logged by the CONNECT code', async () => {
    const c = await rawClient('127.0.0.1', port);
    try {
      c.send(`GET http://allowed.test:${up.port}/b2 HTTP/1.1\r\nHost: allowed.test:${up.port}\r\n\r\nCONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n`);
      const [a, b] = await c.responses(2);
      assert.equal(a!.status, 200);
      assert.equal(b!.status, 403);
    } finally {
      c.destroy();
    }
    await gate.waitForLog((x) => x.method === 'CONNECT' && x.authority === 'other.test:443' && x.tollgate_reason === 'connect_not_in_registry');
  });
});

describe('egress router http-proxy mode: absolute-form HTTP against EGRESS_HTTP_PROXY_DESTINATION', { skip: skipAcl, concurrency: false }, () => {
  let up: HttpUpstream;
  let dns: Dnsmasq;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  let proxy: string;
  let upIp: string;
  let srcIp: string;

  before(async () => {
    upIp = loopbackAddress();
    srcIp = loopbackAddress();
    up = await startHttpUpstream(upIp);
    dns = await startDnsmasq({ 'www.acl.test': upIp, 'denied.acl.test': upIp, 'unlisted.test': upIp });
    cfg = tempConfig(httpProxyRouter(srcIp, ['!denied.acl.test', '*.acl.test']));
    gate = await startGate(['-f', cfg.path, ...HTTP_PROXY_ROUTER_ARGS, '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8']);
    proxy = `http://127.0.0.1:${gate.port(8080)}`;
  });

  after(async () => {
    await gate?.stop();
    await up?.close();
    await dns?.stop();
    cfg?.cleanup();
  });

  it('an allowed name is forwarded from EGRESS_SOURCE, origin-form, Host = target authority', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '-x', proxy, `http://www.acl.test:${up.port}/acl`]);
    assert.equal(r.status, 0, r.stderr);
    const seen = seenBody(r.stdout);
    assert.equal(seen.url, '/acl');
    assert.equal(header(seen, 'host'), `www.acl.test:${up.port}`);
    assert.equal(seen.peer, srcIp);
    const rec = await gate.waitForLog((x) => x.path === '/acl');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.route_name, 'acl:*.acl.test');
    assert.equal(rec.upstream_host, `${upIp}:${up.port}`);
    // The ACL admits hosts the client names: counted as PassthroughCluster, never under the client's host.
    assert.ok(gate.metric('istio_requests_total', 'destination_service="PassthroughCluster"') >= 1);
    assert.equal(gate.metric('istio_requests_total', 'destination_service="www.acl.test"'), 0);
  });

  it('"!" entries and unlisted hosts -> 403 acl_denied / acl_no_match, logged, nothing sent upstream', async () => {
    const n = up.requests.length;
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code}\n', '--max-time', '5', '-x', proxy, `http://denied.acl.test:${up.port}/d`, `http://unlisted.test:${up.port}/u`]);
    assert.deepEqual(r.stdout.trim().split('\n'), ['403', '403']);
    assert.equal((await gate.waitForLog((x) => x.path === '/d')).tollgate_reason, 'acl_denied');
    assert.equal((await gate.waitForLog((x) => x.path === '/u')).tollgate_reason, 'acl_no_match');
    assert.equal(up.requests.length, n);
  });
});

async function waitUntil(pred: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}
