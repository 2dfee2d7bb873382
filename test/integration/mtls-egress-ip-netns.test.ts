/**
 * EgressIP by the caller's mesh identity: an egress gateway in its own network namespace terminates
 * ISTIO_MUTUAL, and a k8s.ovn.org EgressIP per caller namespace (a -> 198.51.100.10, c ->
 * 198.51.100.20) picks the source address from the namespace the caller's certificate proves. Both
 * callers connect from the same address (127.0.0.1 in the namespace), so only the certificate can
 * tell them apart; the upstream (192.0.2.1) reports the peer address it saw. `trace
 * --source-principal` names the same address.
 *
 * The same for TLS traffic the gateway never decrypts (Istio's egress gateway for HTTPS traffic with
 * mTLS): curl speaks TLS to partner.test through a client proxy per namespace (a TLS passthrough
 * route to the gateway, DestinationRule ISTIO_MUTUAL with sni), the gateway terminates the mTLS on a
 * `protocol: TLS` server and sends the inner stream on with a tcp route; namespace d is denied by an
 * AuthorizationPolicy on the TCP connection. Everything runs inside the namespace.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { waitFor } from '../helpers/net.js';
import { meshCert, type MeshCert } from '../helpers/mesh-pki.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { BIN, spawnGate, tempConfig, type ChildGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip') && haveTool('curl') && haveTool('openssl');
const skip = ready ? false : 'needs root, iproute2 (ip netns), curl and openssl';
if (!ready && isCI) throw new Error(`mtls-egress-ip-netns: ${skip}; CI=true`);

const UPSTREAM = '192.0.2.1';
const SOURCE_A = '198.51.100.10';
const SOURCE_C = '198.51.100.20';
const GATE_PORT = 8443;
/** The gateway's ISTIO_MUTUAL server for TLS traffic, and each client proxy's TLS port (by namespace). */
const MESH_TLS_PORT = 9443;
const CLIENT_PORTS: Record<string, number> = { a: 7443, c: 7444, d: 7445 };
const GATEWAY_SERVICE = 'istio-egressgateway.istio-system.svc.cluster.local';

const CONFIG = `apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: c, labels: {team: c}}
---
apiVersion: k8s.ovn.org/v1
kind: EgressIP
metadata: {name: egress-a}
spec:
  egressIPs: [${SOURCE_A}]
  namespaceSelector: {matchLabels: {team: a}}
---
apiVersion: k8s.ovn.org/v1
kind: EgressIP
metadata: {name: egress-c}
spec:
  egressIPs: [${SOURCE_C}]
  namespaceSelector: {matchLabels: {team: c}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner, namespace: istio-system}
spec:
  hosts: [partner.test]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: ${UPSTREAM}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [partner.test]
    tls: {mode: ISTIO_MUTUAL}
  - port: {number: ${MESH_TLS_PORT}, name: tls-mesh, protocol: TLS}
    hosts: [partner.test]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: partner-tls, namespace: istio-system}
spec:
  hosts: [partner.test]
  gateways: [egress]
  tcp: [{match: [{port: ${MESH_TLS_PORT}}], route: [{destination: {host: partner.test, port: {number: 443}}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-d, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules: [{from: [{source: {namespaces: [d]}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: partner, namespace: istio-system}
spec:
  hosts: [partner.test]
  gateways: [egress]
  http: [{route: [{destination: {host: partner.test, port: {number: 80}}}]}]
`;

const GATE_ARGS = ['--role', 'gateway', '-n', 'istio-system', '-l', 'istio=egressgateway'];

/** The client proxy of a namespace: TLS passthrough for partner.test, sent to the gateway over ISTIO_MUTUAL. */
function clientConfig(port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egressgateway, namespace: istio-system}
spec:
  hosts: [${GATEWAY_SERVICE}]
  ports: [{number: ${MESH_TLS_PORT}, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-partner, namespace: istio-system}
spec:
  host: ${GATEWAY_SERVICE}
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: partner.test}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: front, namespace: istio-system}
spec:
  selector: {app: sleep}
  servers: [{port: {number: ${port}, name: tls, protocol: TLS}, hosts: [partner.test], tls: {mode: PASSTHROUGH}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: partner-via-egress, namespace: istio-system}
spec:
  hosts: [partner.test]
  gateways: [front]
  tls: [{match: [{port: ${port}, sniHosts: [partner.test]}], route: [{destination: {host: ${GATEWAY_SERVICE}, port: {number: ${MESH_TLS_PORT}}}}]}]
`;
}

/** HTTP on UPSTREAM:80 and HTTPS on UPSTREAM:443 (certificate and key paths in argv), answering with the peer address seen. */
const UPSTREAM_SERVER = `
const fs = require('node:fs');
const answer = (req, res) => res.end('peer=' + req.socket.remoteAddress);
require('node:http').createServer(answer).listen(80, '${UPSTREAM}', () => console.log('LISTEN'));
require('node:https').createServer({ cert: fs.readFileSync(process.argv[1]), key: fs.readFileSync(process.argv[2]) }, answer).listen(443, '${UPSTREAM}', () => console.log('LISTEN'));`;

function sh(ns: string, ...args: string[]): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} in ${ns}: ${r.stderr}`);
}

describe('EgressIP chosen by the namespace the caller\'s mesh certificate proves', { skip, concurrency: false }, () => {
  const ns = `tgmeip-${process.pid % 100000}`;
  let pki: Pki;
  let a: MeshCert;
  let c: MeshCert;
  let gate: ChildGate | undefined;
  let upstream: ChildProcess | undefined;
  let upstreamCa = '';
  const clients: ChildGate[] = [];
  const cleanups: (() => void)[] = [];
  const cfg = tempConfig(CONFIG);

  before(async () => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    sh(ns, 'ip', 'link', 'set', 'lo', 'up');
    for (const addr of [UPSTREAM, SOURCE_A, SOURCE_C]) sh(ns, 'ip', 'addr', 'add', `${addr}/32`, 'dev', 'lo');
    pki = makePki();
    await pki.ca('mesh-root');
    const gw = await meshCert(pki, 'mesh-root', 'istio-system', 'istio-egressgateway');
    a = await meshCert(pki, 'mesh-root', 'a', 'sleep');
    c = await meshCert(pki, 'mesh-root', 'c', 'sleep');
    upstreamCa = (await pki.ca('partner-ca')).cert;
    const server = await pki.leaf('partner', 'partner-ca', { dns: 'partner.test' });
    let listening = 0;
    upstream = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', UPSTREAM_SERVER, server.cert, server.key], { stdio: ['ignore', 'pipe', 'inherit'] });
    upstream.stdout!.on('data', (d: Buffer) => (listening += d.toString().split('LISTEN').length - 1));
    await waitFor(() => listening === 2, 10_000, 'upstream listening');
    gate = spawnGate(['-f', cfg.path, ...GATE_ARGS, '--port-map', `443=${GATE_PORT}`, '--listen-address-override', '127.0.0.1', '--admin', 'off', '--allow-cidr', '192.0.2.0/24', '--workload-cert-dir', gw.dir], ['ip', 'netns', 'exec', ns]);
    await gate.waitForStderr('tollgate running');
  });

  after(async () => {
    for (const cl of clients) await cl.stop();
    for (const cl of cleanups) cl();
    await gate?.stop();
    if (upstream?.pid !== undefined) upstream.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    cfg.cleanup();
    pki?.cleanup();
  });

  const curl = async (client: MeshCert, path: string): Promise<string> => {
    const r = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '-k', '--max-time', '10', '--cert', client.cert, '--key', client.key, '--resolve', `partner.test:${GATE_PORT}:127.0.0.1`, `https://partner.test:${GATE_PORT}${path}`], { timeoutMs: 15_000 });
    return r.stdout;
  };

  it('callers of namespaces a and c, from one address, reach the upstream from their namespaces\' egress IPs', async () => {
    for (let i = 0; i < 2; i++) {
      assert.equal(await curl(a, `/a-${i}`), `peer=${SOURCE_A}`);
      assert.equal(await curl(c, `/c-${i}`), `peer=${SOURCE_C}`);
    }
    const g = gate!;
    await waitFor(() => g.records().filter((l) => l.path?.startsWith('/c-')).length === 2, 5000, 'access-log lines');
    const rec = g.records().find((l) => l.path === '/c-0')!;
    assert.equal(rec.upstream_local_address?.split(':')[0], SOURCE_C);
    assert.equal(rec.downstream_peer_uri_san, c.spiffeId);
  });

  it('trace --source-principal names the address the data plane chose, with why', async () => {
    const trace = async (principal: string): Promise<{ decision?: { sourceAddress: string | null; detail?: string } }> => {
      const r = await run('ip', ['netns', 'exec', ns, process.execPath, BIN, 'trace', '-f', cfg.path, ...GATE_ARGS, '--allow-cidr', '192.0.2.0/24', '--source-principal', principal, '-o', 'json', 'https://partner.test:443/'], { timeoutMs: 20_000 });
      return JSON.parse(r.stdout) as { decision?: { sourceAddress: string | null; detail?: string } };
    };
    const ta = await trace('cluster.local/ns/a/sa/sleep');
    assert.equal(ta.decision?.sourceAddress, SOURCE_A, JSON.stringify(ta));
    assert.match(ta.decision?.detail ?? '', /egressip:egress-a \(mTLS peer namespace a\)/);
    const tc = await trace('cluster.local/ns/c/sa/sleep');
    assert.equal(tc.decision?.sourceAddress, SOURCE_C, JSON.stringify(tc));
  });

  /** A client proxy in the namespace for callers of `callerNs`, holding that namespace's mesh certificate. */
  const clientProxy = async (callerNs: string): Promise<ChildGate> => {
    const cert = callerNs === 'a' ? a : callerNs === 'c' ? c : await meshCert(pki, 'mesh-root', callerNs, 'sleep');
    const port = CLIENT_PORTS[callerNs]!;
    const ccfg = tempConfig(clientConfig(port));
    cleanups.push(() => ccfg.cleanup());
    const g = spawnGate(['-f', ccfg.path, '--role', 'gateway', '-n', 'istio-system', '-l', 'app=sleep', '--listen-address-override', '127.0.0.1', '--admin', 'off', '--workload-cert-dir', cert.dir], ['ip', 'netns', 'exec', ns]);
    clients.push(g);
    await g.waitForStderr('tollgate running');
    return g;
  };
  const curlTls = async (callerNs: string): Promise<{ exit: number | null; body: string }> => {
    const port = CLIENT_PORTS[callerNs]!;
    const r = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '10', '--cacert', upstreamCa, '--resolve', `partner.test:${port}:127.0.0.1`, `https://partner.test:${port}/`], { timeoutMs: 15_000 });
    return { exit: r.status, body: r.stdout };
  };

  it('TLS through two proxies over mTLS: the gateway never decrypts the app\'s TLS, and each namespace leaves from its own egress IP', async () => {
    const ca = await clientProxy('a');
    const cc = await clientProxy('c');
    assert.deepEqual(await curlTls('a'), { exit: 0, body: `peer=${SOURCE_A}` }, 'curl verified partner.test\'s own certificate end to end');
    assert.deepEqual(await curlTls('c'), { exit: 0, body: `peer=${SOURCE_C}` });
    const g = gate!;
    const byRoute = (p: string | undefined) => g.records().filter((l) => l.route_name === 'istio-system/partner-tls:tcp:0' && l.downstream_peer_uri_san === p);
    await waitFor(() => byRoute(c.spiffeId).length === 1, 10_000, 'gateway TCP log line for c');
    const rec = byRoute(a.spiffeId)[0]!;
    assert.equal(rec.requested_server_name, 'partner.test', 'the outer (mTLS) SNI from the DestinationRule');
    assert.equal(rec.upstream_local_address?.split(':')[0], SOURCE_A);
    for (const [client, cert] of [[ca, a], [cc, c]] as const) {
      await waitFor(() => client.records().length > 0, 10_000, 'client proxy log line');
      const line = client.records()[0]!;
      assert.equal(line.upstream_peer_uri_san, 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway', JSON.stringify(line));
      assert.notEqual(line.downstream_peer_uri_san, cert.spiffeId, 'the app\'s TLS is not terminated at the client proxy');
    }
  });

  it('AuthorizationPolicy on the TCP connection: namespace d is closed before anything is dialed, the policy named in the log', async () => {
    await clientProxy('d');
    const r = await curlTls('d');
    assert.notEqual(r.exit, 0);
    assert.doesNotMatch(r.body, /peer=/);
    const g = gate!;
    await waitFor(() => g.records().find((l) => l.tollgate_reason === 'rbac_denied' && l.downstream_peer_uri_san === 'spiffe://cluster.local/ns/d/sa/sleep'), 10_000, 'denied TCP log line');
    const rec = g.records().find((l) => l.tollgate_reason === 'rbac_denied')!;
    assert.equal(rec.response_code_details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-d]-rule[0]]');
    assert.equal(rec.upstream_host, null, 'nothing dialed');
    // trace tells the same story for the TLS server: the mesh mTLS step, then the policy.
    const t = await run(process.execPath, [BIN, 'trace', '-f', cfg.path, ...GATE_ARGS, '--allow-cidr', '192.0.2.0/24', '--source-principal', 'cluster.local/ns/d/sa/sleep', '-o', 'json', `tls://partner.test:${MESH_TLS_PORT}`], { timeoutMs: 20_000 });
    const out = JSON.parse(t.stdout) as { ok: boolean; reason?: string; detail?: string; steps: { step: string; value: string }[] };
    assert.equal(out.ok, false, t.stdout);
    assert.equal(out.reason, 'rbac_denied');
    assert.equal(out.detail, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-d]-rule[0]]');
    assert.ok(out.steps.some((s) => s.step === 'tls' && s.value.startsWith('mesh mTLS (STRICT), peer cluster.local/ns/d/sa/sleep')), t.stdout);
  });

  it('plaintext sent to the ISTIO_MUTUAL TLS server is closed as tls_not_tls, and trace says so with a hint that applies to a mesh server', async () => {
    const r = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '10', `http://127.0.0.1:${MESH_TLS_PORT}/plain`], { timeoutMs: 15_000 });
    assert.notEqual(r.status, 0);
    const g = gate!;
    await waitFor(() => g.records().find((l) => l.tollgate_reason === 'tls_not_tls'), 10_000, 'plaintext log line');
    const t = await run(process.execPath, [BIN, 'trace', '-f', cfg.path, ...GATE_ARGS, '-o', 'json', `tcp://partner.test:${MESH_TLS_PORT}`], { timeoutMs: 20_000 });
    const out = JSON.parse(t.stdout) as { ok: boolean; reason?: string; hint?: string };
    assert.equal(out.ok, false, t.stdout);
    assert.equal(out.reason?.split(':')[0], 'tls_not_tls', 'trace names the reason the gateway logged');
    assert.match(out.hint ?? '', /ISTIO_MUTUAL.*DestinationRule/, t.stdout);
    assert.doesNotMatch(out.hint ?? '', /PASSTHROUGH/, 'a PASSTHROUGH tls route does not apply to a mesh server');
  });
});
