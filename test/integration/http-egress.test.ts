/**
 * Egress security for HTTP and the reference scenarios, end to end:
 * - registry enforcement (sidecar REGISTRY_ONLY: 502 BLOCKED registry_only, logged) and the SSRF
 *   guard on destinations that come from DNS or from the client (ALLOW_ANY passthrough);
 * - fixed source IP per proxy (--source-address), per ServiceEntry (annotation), per caller
 *   namespace (EgressIP, client bound to a Pod's IP), and fail-closed when the address is missing;
 * - the four-file egress gateway config (dnsmasq answering edition.cnn.com with a loopback address, tollgate as a
 *   child process: the JSON access line on stdout shows the source address);
 * - the nginx ingress scenario (Gateway istio=ingressgateway -> svc-clusterip -> Pod -> nginx);
 * - Envoy's quick-start bootstrap (LOGICAL_DNS cluster, upstream TLS with SNI, host_rewrite_literal);
 * - the bundled default config (`npm start`) with curl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { header, startHttpUpstream, startNginx, type HttpUpstream, type Nginx } from '../helpers/http.js';
import { startDnsmasq, type Dnsmasq } from '../helpers/dns.js';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { addressEntry, egressGateway, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, makeCerts, waitFor, type Certs } from '../helpers/net.js';
import { FIXTURES, spawnGate, startGate, tempConfig, withGateConfig, type ChildGate, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('dnsmasq') && haveTool('nginx') && haveTool('openssl') && isRoot;
const skip = ready ? false : 'needs curl, dnsmasq, nginx, openssl and root (upstreams bind port 80/443 on loopback addresses)';
if (!ready && isCI) throw new Error(`http-egress: ${skip}; CI=true`);

const HTTP = join(FIXTURES, 'http');

/** `to`: a port on 127.0.0.1, or `address:port`. */
async function curl(to: number | string, host: string, path = '/', extra: string[] = []): Promise<{ status: number; body: string; stderr: string }> {
  const authority = typeof to === 'number' ? `127.0.0.1:${to}` : to;
  const r = await run('curl', ['-sS', '--max-time', '8', '-o', '-', '-w', '\n%{http_code}', '-H', `Host: ${host}`, ...extra, `http://${authority}${path}`]);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl), stderr: r.stderr };
}

/** `node dist/src/cli/bin.js run ...` with extra environment; resolves once it runs. */
async function spawnTollgate(args: string[], env: Record<string, string> = {}): Promise<ChildGate> {
  const child = spawnGate(args, [], env);
  await child.waitForStderr('tollgate running', 8000);
  return child;
}

describe('HTTP egress security and fixed source addresses', { skip, concurrency: false }, () => {
  let echo: HttpUpstream;
  let dns: Dnsmasq;
  let gate: TestGate;
  let sidecar: TestGate;
  let port: number;
  let sidecarPort: number;
  let cfg: { path: string; cleanup(): void };
  let sidecarCfg: { path: string; cleanup(): void };
  const echoIp = loopbackAddress();
  const proxySrc = loopbackAddress();
  const seSrc = loopbackAddress();
  const nsSrc = loopbackAddress();
  const podIp = loopbackAddress();

  before(async () => {
    echo = await startHttpUpstream(echoIp, 80);
    dns = await startDnsmasq({ 'internal.test': '10.1.2.3', 'metadata.test': '169.254.169.254', 'allowed.test': echoIp, 'mapped.test': '::ffff:10.0.0.1' });
    cfg = tempConfig(`${addressEntry('plain', 'egress', 'plain.test', [echoIp])}${addressEntry('fixed', 'egress', 'fixed.test', [echoIp], { annotations: `tollgate.io/source-address: ${seSrc}` })}${addressEntry('missing', 'egress', 'missing.test', [echoIp], { annotations: 'tollgate.io/source-address: 192.0.2.77' })}apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dnsnames, namespace: egress}
spec:
  hosts: [internal.test, metadata.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: v1
kind: Namespace
metadata: {name: risk, labels: {team: risk}}
---
apiVersion: v1
kind: Pod
metadata: {name: scorer, namespace: risk, labels: {app: scorer}}
spec: {containers: [{name: app, image: busybox}]}
status: {podIP: ${podIp}}
---
apiVersion: k8s.ovn.org/v1
kind: EgressIP
metadata: {name: risk-egress}
spec:
  egressIPs: [${nsSrc}]
  namespaceSelector:
    matchLabels: {team: risk}
---
${egressGateway(['*'], 'egress', 'gw')}${virtualService('out', 'egress', ['plain.test', 'fixed.test', 'missing.test', 'internal.test', 'metadata.test'], ['gw'], `http:
- match: [{authority: {exact: plain.test}}]
  route: [{destination: {host: plain.test, port: {number: 80}}}]
- match: [{authority: {exact: fixed.test}}]
  route: [{destination: {host: fixed.test, port: {number: 80}}}]
- match: [{authority: {exact: missing.test}}]
  route: [{destination: {host: missing.test, port: {number: 80}}}]
- match: [{authority: {exact: internal.test}}]
  route: [{destination: {host: internal.test, port: {number: 80}}}]
- match: [{authority: {exact: metadata.test}}]
  route: [{destination: {host: metadata.test, port: {number: 80}}}]`)}`);
    gate = await startGate(['-f', cfg.path, '--role', 'gateway', '--namespace', 'egress', '--labels', 'istio=egressgateway', '--port-map', '80=0', '--dns-server', dns.server, '--source-address', proxySrc]);
    port = gate.port(80);
    sidecarCfg = tempConfig(addressEntry('known', 'app', 'plain.test', [echoIp]));
    sidecar = await startGate(['-f', sidecarCfg.path, '--role', 'sidecar', '--namespace', 'app', '--port-map', '80=0,15001=0,15006=0']);
    sidecarPort = sidecar.port(80);
  });

  after(async () => {
    await gate?.stop();
    await sidecar?.stop();
    await echo?.close();
    await dns?.stop();
    cfg?.cleanup();
    sidecarCfg?.cleanup();
  });

  it('proxy-wide --source-address: the upstream sees it, the access log shows it', async () => {
    const r = await curl(port, 'plain.test');
    assert.equal(r.status, 200, r.stderr);
    assert.equal((JSON.parse(r.body) as { peer: string }).peer, proxySrc);
    const rec = await gate.waitForLog((x) => x.authority === 'plain.test');
    assert.match(rec.upstream_local_address ?? '', new RegExp(`^${proxySrc.replace(/\./g, '\\.')}:\\d+$`));
  });

  it('per ServiceEntry (tollgate.io/source-address) wins over the proxy-wide address', async () => {
    const r = await curl(port, 'fixed.test');
    assert.equal(r.status, 200, r.stderr);
    assert.equal((JSON.parse(r.body) as { peer: string }).peer, seSrc);
  });

  it('per caller namespace (EgressIP): a client on a Pod IP of namespace risk leaves from the EgressIP; metrics name the namespace', async () => {
    const r = await curl(port, 'plain.test', '/from-risk', ['--interface', podIp]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal((JSON.parse(r.body) as { peer: string }).peer, nsSrc);
    assert.ok(gate.metric('istio_requests_total', 'source_workload_namespace="risk"') >= 1);
  });

  it('a source address not assigned on this host is reported when the snapshot is applied, and fails closed: 503 UF source_address_unavailable, nothing sent', async () => {
    // Reported at apply (log, metric, /ready detail, the ACK to a control plane): the snapshot is still served.
    const w = gate.tg.runtime.warnings;
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0]!, /^source address 192\.0\.2\.77 is not assigned on this host \(used by cluster outbound\|80\|\|missing\.test\)/);
    assert.equal(gate.metric('tollgate_source_address_unavailable', 'address="192.0.2.77"'), 1);
    assert.equal(gate.metric('tollgate_source_address_unavailable', `address="${proxySrc}"`), 0, 'assigned addresses are not reported');
    const before = echo.requests.length;
    const r = await curl(port, 'missing.test');
    assert.equal(r.status, 503);
    assert.equal(echo.requests.length, before);
    const rec = await gate.waitForLog((x) => x.authority === 'missing.test');
    assert.equal(rec.response_flags, 'UF');
    assert.equal(rec.tollgate_reason, 'source_address_unavailable');
    assert.equal(rec.upstream_local_address, '192.0.2.77');
  });

  it('SSRF: a DNS answer in 10/8 or the metadata address is denied (403 BLOCKED ssrf_denied)', async () => {
    for (const host of ['internal.test', 'metadata.test']) {
      const r = await curl(port, host);
      assert.equal(r.status, 403, host);
      const rec = await gate.waitForLog((x) => x.authority === host);
      assert.equal(rec.response_flags, 'BLOCKED');
      assert.equal(rec.tollgate_reason, 'ssrf_denied');
    }
  });

  it('sidecar REGISTRY_ONLY: a host outside the registry gets 502 BLOCKED registry_only, logged; a registered one passes', async () => {
    const r = await curl(sidecarPort, 'evil.example');
    assert.equal(r.status, 502);
    const rec = await sidecar.waitForLog((x) => x.authority === 'evil.example');
    assert.equal(rec.response_flags, 'BLOCKED');
    assert.equal(rec.tollgate_reason, 'registry_only');
    assert.equal(rec.route_name, 'block_all');
    const ok = await curl(sidecarPort, 'plain.test');
    assert.equal(ok.status, 200, ok.stderr);
    // case and trailing-dot spellings of a registered host are the same host
    assert.equal((await curl(sidecarPort, 'PLAIN.test.')).status, 200);
  });

  it('sidecar ALLOW_ANY: destinations named by the client are checked by the SSRF guard', async () => {
    const allowAny = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: app}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
${addressEntry('known', 'app', 'plain.test', [echoIp])}`;
    const sidecarArgs = ['--role', 'sidecar', '--namespace', 'app', '--port-map', '80=0,15001=0,15006=0', '--dns-server', dns.server];
    await withGateConfig(allowAny, sidecarArgs, async (g) => {
      const p = g.port(80);
      for (const host of ['internal.test', 'metadata.test', '10.0.0.1', '169.254.169.254', '0xa9fea9fe', 'allowed.test']) {
        const r = await curl(p, host);
        assert.equal(r.status, 403, `${host}: ${r.body}`);
      }
      const rec = await g.waitForLog((x) => x.authority === '0xa9fea9fe');
      assert.equal(rec.tollgate_reason, 'ssrf_denied', 'a legacy IPv4 spelling is the metadata address');
    });
    // With an explicit allowance, the same passthrough reaches the loopback upstream.
    await withGateConfig(allowAny, [...sidecarArgs, '--allow-cidr', '127.0.0.0/8'], async (g2) => {
      const r = await curl(g2.port(80), 'allowed.test');
      assert.equal(r.status, 200, r.body + r.stderr);
      assert.equal(header(JSON.parse(r.body) as { rawHeaders: string[] }, 'host'), 'allowed.test');
    });
  });
});

describe('the four-file egress gateway config over HTTP (tollgate as a child process)', { skip, concurrency: false }, () => {
  let echo: HttpUpstream;
  let dns: Dnsmasq;
  let tg: ChildGate;
  // The config's own ports on an address of this process's own: concurrent runs never collide on them.
  const gateIp = loopbackAddress();
  const port = `${gateIp}:80`;
  const upstreamIp = loopbackAddress();
  const sourceIp = loopbackAddress();

  before(async () => {
    echo = await startHttpUpstream(upstreamIp, 80);
    dns = await startDnsmasq({ 'edition.cnn.com': upstreamIp, 'www.naver.com': upstreamIp });
    tg = await spawnTollgate(['-f', join(HTTP, '003-egress-gateway-4-files.yaml'), '--role', 'gateway', '--namespace', 'istio-system', '--labels', 'istio=egressgateway', '--listen-address-override', gateIp, '--admin', 'off', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8', '--source-address', sourceIp]);
  });

  after(async () => {
    await tg?.stop();
    await echo?.close();
    await dns?.stop();
  });

  it("curl -H 'Host: edition.cnn.com' reaches the upstream from the configured source address; the JSON access line shows it", async () => {
    const r = await curl(port, 'edition.cnn.com');
    assert.equal(r.status, 200, r.stderr);
    const seen = JSON.parse(r.body) as { peer: string; rawHeaders: string[] };
    assert.equal(seen.peer, sourceIp);
    assert.equal(header(seen, 'host'), 'edition.cnn.com');
    await waitFor(() => tg.records().find((x) => x.authority === 'edition.cnn.com'), 3000, 'access line on stdout');
    const rec = tg.records().find((x) => x.authority === 'edition.cnn.com')!;
    assert.equal(rec.response_code, 200);
    assert.equal(rec.upstream_cluster, 'outbound|80||edition.cnn.com');
    assert.equal(rec.upstream_host, `${upstreamIp}:80`);
    assert.match(rec.upstream_local_address ?? '', new RegExp(`^${sourceIp.replace(/\./g, '\\.')}:\\d+$`));
    assert.equal(rec.route_name, 'istio-system/egressgateway:0');
    const line = tg.stdout.find((l) => l.includes('"edition.cnn.com"'))!;
    assert.deepEqual(Object.keys(JSON.parse(line)).slice(0, 5), ['start_time', 'method', 'authority', 'path', 'protocol']);
  });

  it('www.naver.com passes too; a host the gateway does not serve is 404 NR, logged with its reason', async () => {
    assert.equal((await curl(port, 'www.naver.com')).status, 200);
    const r = await curl(port, 'www.google.com');
    assert.equal(r.status, 404);
    await waitFor(() => tg.records().find((x) => x.authority === 'www.google.com'), 3000, 'denial line');
    const rec = tg.records().find((x) => x.authority === 'www.google.com')!;
    assert.equal(rec.response_flags, 'NR');
    assert.equal(rec.tollgate_reason, 'route_not_found');
  });
});

describe('nginx ingress: ingress gateway -> svc-clusterip -> Pod -> nginx', { skip, concurrency: false }, () => {
  let nginx: Nginx;
  let gate: TestGate;
  let pod: { path: string; cleanup(): void };
  const podIp = loopbackAddress();

  before(async () => {
    nginx = await startNginx((dir) => `  server { listen ${podIp}:80; root ${dir}/www; location / { } }`, podIp, 80);
    pod = tempConfig(readFileSync(join(HTTP, '001-ingress-pod.yaml'), 'utf8').replace('{podIP: PODIP}', `{podIP: ${podIp}}`));
    gate = await startGate(['-f', join(HTTP, '001-ingress-gateway.yaml'), '-f', pod.path, '--role', 'gateway', '--namespace', 'default', '--labels', 'istio=ingressgateway', '--port-map', '80=0']);
  });

  after(async () => {
    await gate?.stop();
    await nginx?.stop();
    pod?.cleanup();
  });

  it('Host www.gasida.dev is served by nginx; other hosts 404', async () => {
    const r = await curl(gate.port(80), 'www.gasida.dev');
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.body, '<h1>nginx behind tollgate</h1>\n');
    const rec = await gate.waitForLog((x) => x.authority === 'www.gasida.dev');
    assert.equal(rec.upstream_cluster, 'outbound|80||svc-clusterip.default.svc.cluster.local');
    assert.equal(rec.upstream_host, `${podIp}:80`);
    assert.equal((await curl(gate.port(80), 'www.example.org')).status, 404);
  });
});

describe('Envoy quick-start bootstrap — LOGICAL_DNS cluster with upstream TLS and SNI', { skip, concurrency: false }, () => {
  let dns: Dnsmasq;
  let certs: Certs;
  let tls: HttpsServer;
  const snis: string[] = [];
  const tlsIp = loopbackAddress();

  before(async () => {
    certs = makeCerts(['www.envoyproxy.io']);
    // An HTTPS upstream that answers with the Host it received and the SNI of the TLS session.
    tls = createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
      const sni = (req.socket as TLSSocket).servername || '';
      snis.push(sni);
      res.end(`host=${req.headers.host} sni=${sni}\n`);
    });
    await new Promise<void>((r) => tls.listen(443, tlsIp, () => r()));
    dns = await startDnsmasq({ 'www.envoyproxy.io': tlsIp });
  });

  after(async () => {
    tls?.closeAllConnections();
    await new Promise((r) => (tls ? tls.close(() => r(undefined)) : r(undefined)));
    await dns?.stop();
    certs?.cleanup();
  });

  it('listener_0 forwards over TLS with SNI www.envoyproxy.io and host_rewrite_literal (certificate verified)', async () => {
    const gateIp = loopbackAddress();
    const tg = await spawnTollgate(['-f', join(HTTP, '001-envoy-demo.yaml'), '--listen-address-override', gateIp, '--admin', 'off', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8'], { NODE_EXTRA_CA_CERTS: certs.cert });
    try {
      const r = await curl(`${gateIp}:10000`, 'anything.local');
      assert.equal(r.status, 200, r.body + r.stderr + tg.stderr.join(''));
      assert.equal(r.body, 'host=www.envoyproxy.io sni=www.envoyproxy.io\n');
      assert.ok(snis.includes('www.envoyproxy.io'));
      await waitFor(() => tg.records().length > 0, 3000, 'access line');
      assert.equal(tg.records()[0]!.upstream_cluster, 'service_envoyproxy_io');
    } finally {
      await tg.stop();
    }
  });

  it('an upstream certificate that does not verify fails closed: 503 UF upstream_tls_handshake_failed', async () => {
    const gate = await startGate(['-f', join(HTTP, '001-envoy-demo.yaml'), '--port-map', '10000=0', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8']);
    try {
      const r = await curl(gate.port(10000), 'x');
      assert.equal(r.status, 503);
      const rec = await gate.waitForLog(() => true);
      assert.equal(rec.tollgate_reason, 'upstream_tls_handshake_failed');
      assert.match(rec.upstream_transport_failure_reason ?? '', /SELF_SIGNED|self.signed|unable to verify/i);
    } finally {
      await gate.stop();
    }
  });
});

describe('the bundled default config (npm start)', { skip, concurrency: false }, () => {
  it('serves example.com through 127.0.0.1:8080 (port-mapped here) and refuses other hosts', async () => {
    const echoIp = loopbackAddress();
    const echo = await startHttpUpstream(echoIp, 80);
    const dns = await startDnsmasq({ 'example.com': echoIp, 'httpbin.org': echoIp });
    const gate = await startGate(['--port-map', '8080=0,8443=0', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8']);
    try {
      const r = await curl(gate.port(8080), 'example.com');
      assert.equal(r.status, 200, r.stderr);
      assert.equal(header(JSON.parse(r.body) as { rawHeaders: string[] }, 'host'), 'example.com');
      assert.equal((await curl(gate.port(8080), 'evil.example')).status, 404);
    } finally {
      await gate.stop();
      await echo.close();
      await dns.stop();
    }
  });
});
