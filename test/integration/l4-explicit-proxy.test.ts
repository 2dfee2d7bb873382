/**
 * Explicit proxy: `--explicit-proxy HOST:PORT` serves CONNECT against the registry
 * (a ServiceEntry must declare host and port; CONNECT ports default to 443), checks the SNI after
 * 200 against the CONNECT host, refuses CONNECT bodies and early bytes, applies the SSRF guard and
 * the fixed source address; the egress router's http-proxy mode uses its allow/deny list.
 * CONNECT port limits, SSRF guard, DNS rebinding, self-connect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startDnsmasq, type Dnsmasq } from '../helpers/dns.js';
import { loopbackAddress, makeCerts, startTlsServer, tcpExchange, type Certs, type TlsServer } from '../helpers/net.js';
import { httpProxyRouter } from '../helpers/istio-yaml.js';
import { HTTP_PROXY_ROUTER_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = haveTool('dnsmasq') && haveTool('openssl') && haveTool('curl') && isRoot;
const skip = ready ? false : 'needs dnsmasq, openssl, curl and root (binds 443 on a loopback address)';
if (!ready && isCI) throw new Error(`l4-explicit-proxy: ${skip}; CI=true`);

function registryYaml(extra = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: allowed, namespace: default }
spec:
  hosts: [allowed.example]
  ports:
  - { number: 443, name: tls, protocol: TLS }
  - { number: 80, name: http, protocol: HTTP }
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: wild, namespace: default }
spec:
  hosts: ["*.wild.example"]
  ports:
  - { number: 443, name: tls, protocol: TLS }
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: internal-looking, namespace: default }
spec:
  hosts: [meta.example, private.example, cgnat.example, loop.example]
  ports:
  - { number: 443, name: tls, protocol: TLS }
  resolution: DNS
${extra}`;
}

/** The proxy's listeners bind an address of this process's own, so concurrent test runs never share their ports. */
const PROXY_HOST = loopbackAddress();

/** Sends a CONNECT and returns the socket plus the response head. */
async function rawConnect(port: number, target: string, extra = ''): Promise<{ s: Socket; head: string }> {
  const s = connect({ host: PROXY_HOST, port });
  await new Promise((r) => s.once('connect', r));
  s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${extra}`);
  const head = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        s.removeListener('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('close', () => resolve(text));
    s.on('error', () => {});
  });
  return { s, head };
}

/** The proxy's answer head to `CONNECT target`; the socket is closed right after. */
async function connectHead(port: number, target: string): Promise<string> {
  const { s, head } = await rawConnect(port, target);
  s.destroy();
  return head;
}

describe('explicit proxy: CONNECT against the registry', { skip, concurrency: false }, () => {
  let dns: Dnsmasq;
  let certs: Certs;
  let upstream: TlsServer;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  let upIp: string;
  let srcIp: string;
  let port: number;

  before(async () => {
    upIp = loopbackAddress();
    srcIp = loopbackAddress();
    certs = makeCerts(['allowed.example', 'a.wild.example', 'other.example']);
    upstream = await startTlsServer(upIp, 443, certs);
    dns = await startDnsmasq({
      'allowed.example': upIp,
      'other.example': upIp,
      'a.wild.example': upIp,
      'meta.example': '169.254.169.254',
      'private.example': '10.1.2.3',
      'cgnat.example': '100.64.0.1',
      'loop.example': '127.0.0.1',
    });
    cfg = tempConfig(
      registryYaml(`---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: egressgateway, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers:
  - port: { number: 443, name: tls, protocol: TLS }
    hosts: ["*.wild.example"]
    tls: { mode: PASSTHROUGH }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: wild, namespace: default }
spec:
  hosts: ["*.wild.example"]
  gateways: [egressgateway]
  tls:
  - match: [{ port: 443, sniHosts: ["*.wild.example"] }]
    route: [{ destination: { host: "*.wild.example", port: { number: 443 } } }]
`),
    );
    port = 3128;
    gate = await startGate(['-f', cfg.path, '--port-map', '443=0', '--explicit-proxy', `${PROXY_HOST}:${port}`, '--listen-address-override', PROXY_HOST, '--dns-server', dns.server, '--allow-cidr', `${upIp}/32`, '--source-address', srcIp, '--tls-hello-timeout', '500']);
  });

  after(async () => {
    await gate?.stop();
    await upstream?.close();
    await dns?.stop();
    certs?.cleanup();
    cfg?.cleanup();
  });

  it('curl -x reaches an allowed host (ServiceEntry host + port 443), from the source address, logged', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '--cacert', certs.cert, '-x', `http://${PROXY_HOST}:${port}`, 'https://allowed.example/']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `peer=${srcIp} sni=allowed.example\n`);
    const rec = await gate.waitForLog((x) => x.method === 'CONNECT' && x.authority === 'allowed.example:443' && x.bytes_sent > 0);
    assert.equal(rec.response_code, 200);
    assert.equal(rec.upstream_cluster, 'outbound|443||allowed.example');
    assert.equal(rec.requested_server_name, 'allowed.example');
    assert.equal(rec.upstream_host, `${upIp}:443`);
    assert.ok(rec.upstream_local_address?.startsWith(`${srcIp}:`));
  });

  it('curl -x to a host outside the registry gets 403, logged connect_not_in_registry', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '-k', '-x', `http://${PROXY_HOST}:${port}`, 'https://other.example/']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /403/);
    const rec = await gate.waitForLog((x) => x.authority === 'other.example:443');
    assert.equal(rec.response_code, 403);
    assert.equal(rec.tollgate_reason, 'connect_not_in_registry');
  });

  it('E3: CONNECT only to allowed ports: allowed.example:80 is refused', async () => {
    const head = await connectHead(port, 'allowed.example:80');
    assert.match(head, /^HTTP\/1\.1 403 /);
    await gate.waitForLog((x) => x.authority === 'allowed.example:80' && x.tollgate_reason === 'connect_port_not_allowed');
  });

  it('E4: an SNI that differs from the CONNECT host closes the tunnel (domain fronting), logged', async () => {
    const { s, head } = await rawConnect(port, 'allowed.example:443');
    assert.match(head, /^HTTP\/1\.1 200 /);
    const err = await new Promise<string>((resolve) => {
      const t = tlsConnect({ socket: s, servername: 'other.example', rejectUnauthorized: false });
      t.on('secureConnect', () => resolve('connected'));
      t.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      t.on('close', () => resolve('closed'));
    });
    assert.notEqual(err, 'connected');
    const rec = await gate.waitForLog((x) => x.tollgate_reason === 'connect_sni_mismatch');
    assert.equal(rec.requested_server_name, 'other.example');
    assert.ok(!upstream.snis.includes('other.example'), 'the hello never reached the upstream');
  });

  it('a CONNECT with a body is refused (400 connect_with_body)', async () => {
    const r = await tcpExchange(PROXY_HOST, port, 'CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\nContent-Length: 5\r\n\r\nhello');
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    await gate.waitForLog((x) => x.tollgate_reason === 'connect_with_body');
  });

  it('bytes sent after CONNECT before the answer are refused (400 connect_early_data)', async () => {
    const r = await tcpExchange(PROXY_HOST, port, 'CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n\x16\x03\x01\x00\x05hello');
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    await gate.waitForLog((x) => x.tollgate_reason === 'connect_early_data');
  });

  it('E6: DNS answers in metadata, private, CGNAT and loopback ranges are denied unless allowed', async () => {
    for (const h of ['meta.example', 'private.example', 'cgnat.example', 'loop.example']) {
      const head = await connectHead(port, `${h}:443`);
      assert.match(head, /^HTTP\/1\.1 403 /, h);
      const rec = await gate.waitForLog((x) => x.authority === `${h}:443` && x.tollgate_reason === 'ssrf_denied');
      assert.equal(rec.response_flags, 'BLOCKED');
    }
  });

  it('resolution NONE (*.wild.example): tunnels to the requested host after DNS + SSRF check', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '--cacert', certs.cert, '-x', `http://${PROXY_HOST}:${port}`, 'https://a.wild.example/']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `peer=${srcIp} sni=a.wild.example\n`);
  });

  it('TLS passthrough to a resolution NONE ServiceEntry (*.wild.example) connects to the SNI host after DNS + SSRF check', async () => {
    const p443 = gate.port(443);
    const r = await run('curl', ['-sS', '--max-time', '5', '--cacert', certs.cert, '--resolve', `a.wild.example:${p443}:${PROXY_HOST}`, `https://a.wild.example:${p443}/`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `peer=${srcIp} sni=a.wild.example\n`);
    const rec = await gate.waitForLog((x) => x.method === null && x.requested_server_name === 'a.wild.example' && x.bytes_sent > 0);
    assert.equal(rec.upstream_cluster, 'outbound|443||*.wild.example');
    assert.equal(rec.upstream_host, `${upIp}:443`);
    // a covered name that does not resolve is refused before any upstream connection
    const hello = await run('curl', ['-sS', '--max-time', '5', '-k', '--resolve', `nx.wild.example:${p443}:${PROXY_HOST}`, `https://nx.wild.example:${p443}/`]);
    assert.notEqual(hello.status, 0);
    await gate.waitForLog((x) => x.requested_server_name === 'nx.wild.example' && x.tollgate_reason === 'dns_resolution_failed');
  });

  it('DNS failure for a requested host -> 502 dns_resolution_failed', async () => {
    const head = await connectHead(port, 'nx.wild.example:443');
    assert.match(head, /^HTTP\/1\.1 502 /);
    await gate.waitForLog((x) => x.authority === 'nx.wild.example:443' && x.tollgate_reason === 'dns_resolution_failed');
  });

  it('absolute-form requests are answered (501 until the HTTP engine provides handleExplicitProxy)', async () => {
    const r = await tcpExchange(PROXY_HOST, port, 'GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n');
    assert.match(r.data, /^HTTP\/1\.1 (501|200|502|503) /);
  });

  it('a malformed request gets 400 and is logged', async () => {
    const r = await tcpExchange(PROXY_HOST, port, 'CONNECT allowed.example:443 HTTP/1.1\r\nHost : x\r\n\r\n');
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    await gate.waitForLog((x) => x.tollgate_reason === 'http_bad_request');
  });
});

describe('explicit proxy: never connects to itself (E10)', { skip }, () => {
  it('CONNECT to a registry host that resolves to the proxy itself is refused (self_connect)', async () => {
    const port = 3129;
    const dns = await startDnsmasq({ 'self.example': PROXY_HOST });
    const cfg = tempConfig(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: self, namespace: default }
spec:
  hosts: [self.example]
  ports: [{ number: ${port}, name: tcp, protocol: TCP }]
  resolution: DNS
`);
    const gate = await startGate(['-f', cfg.path, '--explicit-proxy', `${PROXY_HOST}:${port}`, '--listen-address-override', PROXY_HOST, '--connect-ports', String(port), '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8']);
    try {
      const head = await connectHead(port, `self.example:${port}`);
      assert.match(head, /^HTTP\/1\.1 403 /);
      await gate.waitForLog((x) => x.tollgate_reason === 'self_connect');
    } finally {
      await gate.stop();
      await dns.stop();
      cfg.cleanup();
    }
  });
});

describe('egress router http-proxy mode (EGRESS_HTTP_PROXY_DESTINATION)', { skip }, () => {
  it('allows by name or IP entry, denies "!" entries and everything unlisted, binds EGRESS_SOURCE', async () => {
    const upIp = loopbackAddress();
    const srcIp = loopbackAddress();
    const certs = makeCerts(['www.acl.example', 'denied.acl.example']);
    const upstream = await startTlsServer(upIp, 443, certs);
    const dns = await startDnsmasq({ 'www.acl.example': upIp, 'denied.acl.example': upIp, 'unlisted.example': upIp });
    const cfg = tempConfig(httpProxyRouter(srcIp, ['!denied.acl.example', '*.acl.example', upIp]));
    const gate = await startGate(['-f', cfg.path, ...HTTP_PROXY_ROUTER_ARGS, '--listen-address-override', PROXY_HOST, '--dns-server', dns.server]);
    try {
      const p = gate.port(8080);
      const ok = await run('curl', ['-sS', '--max-time', '5', '--cacert', certs.cert, '-x', `http://${PROXY_HOST}:${p}`, 'https://www.acl.example/']);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, `peer=${srcIp} sni=www.acl.example\n`);
      const denied = await connectHead(p, 'denied.acl.example:443');
      assert.match(denied, /^HTTP\/1\.1 403 /);
      await gate.waitForLog((x) => x.tollgate_reason === 'acl_denied');
      const unlisted = await connectHead(p, 'unlisted.example:443');
      // unlisted.example resolves to upIp, which the list names as an IP entry: allowed by address.
      assert.match(unlisted, /^HTTP\/1\.1 200 /);
      const nomatch = await connectHead(p, '192.0.2.77:443');
      assert.match(nomatch, /^HTTP\/1\.1 403 /);
      await gate.waitForLog((x) => x.tollgate_reason === 'acl_no_match');
    } finally {
      await gate.stop();
      await upstream.close();
      await dns.stop();
      certs.cleanup();
      cfg.cleanup();
    }
  });
});
