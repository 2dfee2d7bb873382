/**
 * `tollgate.io/allow-private-addresses`: an on-premises host called by name, whose DNS answer is a
 * private address, passes the SSRF guard only when its ServiceEntry names the range. dnsmasq is
 * the resolver. No packet goes to a private address: allowed answers are checked with the
 * cluster manager's choose() (the exact decision the data plane takes before it dials), refused
 * ones are refused before any dial, through the running gateway. Also: the denial says how to
 * allow it; analyze reports bad values as errors at their line and shows good ones; trace shows
 * the exemption and the address it would dial.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { rawClient } from '../helpers/http.js';
import { startDnsmasq, type Dnsmasq } from '../helpers/dns.js';
import { loadYaml } from '../helpers/pipeline.js';
import { BIN, EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('dnsmasq');
const skip = ready ? false : 'needs dnsmasq';
if (!ready && isCI) throw new Error(`ssrf-allow-private: ${skip}; CI=true`);

function entry(name: string, host: string, allow: string | undefined): string {
  const annotations = allow === undefined ? '' : `\n  annotations: {tollgate.io/allow-private-addresses: "${allow}"}`;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: edge${annotations}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
`;
}

const HOSTS = ['erp.corp.test', 'other.corp.test', 'moved.corp.test', 'meta.corp.test'];

const CONFIG =
  entry('erp', 'erp.corp.test', '10.20.0.0/16') +
  entry('other', 'other.corp.test', undefined) +
  entry('moved', 'moved.corp.test', '10.20.0.0/16') +
  entry('meta', 'meta.corp.test', '100.64.0.0/10') +
  `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [${HOSTS.join(', ')}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: corp, namespace: edge}
spec:
  hosts: [${HOSTS.join(', ')}]
  gateways: [gw]
  http:
${HOSTS.map((h) => `  - match: [{authority: {exact: ${h}}}]\n    route: [{destination: {host: ${h}, port: {number: 80}}}]`).join('\n')}
`;

describe('SSRF guard: tollgate.io/allow-private-addresses', { skip, concurrency: false }, () => {
  let dns: Dnsmasq;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    // 100.100.100.200 lies in CGNAT space but is a cloud metadata address.
    dns = await startDnsmasq({ 'erp.corp.test': '10.20.1.7', 'other.corp.test': '10.20.1.8', 'moved.corp.test': '10.99.0.1', 'meta.corp.test': '100.100.100.200' });
    cfg = tempConfig(CONFIG);
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS, '--dns-server', dns.server]);
  });

  after(async () => {
    await gate?.stop();
    await dns?.stop();
    cfg?.cleanup();
  });

  it('the annotated entry: its private DNS answer inside the listed range is the address the proxy would dial', async () => {
    const r = await gate.tg.services.clusters.choose({ cluster: 'outbound|80||erp.corp.test', requestedPort: 80 });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.target.ip, '10.20.1.7');
  });

  async function refused(host: string): Promise<string> {
    const c = await rawClient('127.0.0.1', gate.port(80));
    c.send(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const [res] = await c.responses(1, 8000);
    c.destroy();
    assert.equal(res!.status, 403, host);
    const rec = await gate.waitForLog((x) => x.authority === host, 8000);
    assert.equal(rec.tollgate_reason, 'ssrf_denied');
    return rec.response_code_details ?? '';
  }

  it('an entry without the annotation is refused, and the denial says which annotation would allow it', async () => {
    const detail = await refused('other.corp.test');
    assert.match(detail, /10\.20\.1\.8 is private/);
    assert.match(detail, /annotate ServiceEntry edge\/other with tollgate\.io\/allow-private-addresses: "10\.20\.1\.8"/);
  });

  it('an answer outside the listed range is refused (the range, not the host, is what is trusted)', async () => {
    const detail = await refused('moved.corp.test');
    assert.match(detail, /10\.99\.0\.1 is private.*\(it lists 10\.20\.0\.0\/16\)/);
  });

  it('a metadata address inside a listed CGNAT range stays refused; only --allow-cidr could open it', async () => {
    const detail = await refused('meta.corp.test');
    assert.match(detail, /100\.100\.100\.200 is metadata/);
    assert.match(detail, /only the proxy's --allow-cidr 100\.100\.100\.200/);
  });

  it('analyze: "true", a loopback range and junk are errors at the annotation line; a valid list is shown', () => {
    const bad = entry('bad', 'bad.corp.test', 'true, 127.0.0.0/8, 10.0.0.0/7, nonsense');
    const loaded = loadYaml(`${CONFIG}---\n${bad}`, 'corp.yaml');
    const diags = analyzeModel(loaded.model);
    const errors = diags.filter((d) => d.code === 'TG_ALLOW_PRIVATE_INVALID');
    assert.equal(errors.length, 4, JSON.stringify(errors.map((d) => d.message)));
    const annotationLine = `${CONFIG}---\n${bad}`.split('\n').findIndex((l, i, all) => l.includes('tollgate.io/allow-private-addresses') && all.slice(0, i).join('\n').includes('name: bad')) + 1;
    for (const d of errors) assert.equal(d.pos?.line, annotationLine);
    assert.match(errors.map((d) => d.message).join('\n'), /"true": name the ranges instead/);
    assert.match(errors.map((d) => d.message).join('\n'), /"127\.0\.0\.0\/8" is not inside private/);
    const shown = diags.filter((d) => d.code === 'TG_PRIVATE_ADDRESSES_ALLOWED').map((d) => d.message);
    assert.ok(shown.some((m) => m.includes('erp.corp.test inside 10.20.0.0/16')), shown.join('\n'));
  });

  it('trace shows the exemption and the address the proxy would dial, from the same cluster manager', async () => {
    const ok = await run('node', [BIN, 'trace', '-f', cfg.path, '-n', 'edge', '-l', 'istio=egressgateway', '--dns-server', dns.server, 'http://erp.corp.test/']);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /SSRF exemption.*10\.20\.0\.0\/16/);
    assert.match(ok.stdout, /10\.20\.1\.7:80/);
    const denied = await run('node', [BIN, 'trace', '-f', cfg.path, '-n', 'edge', '-l', 'istio=egressgateway', '--dns-server', dns.server, 'http://other.corp.test/']);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stdout + denied.stderr, /ssrf_denied/);
    assert.match(denied.stdout + denied.stderr, /tollgate\.io\/allow-private-addresses/);
  });
});
