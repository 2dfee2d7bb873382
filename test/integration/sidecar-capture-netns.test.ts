/**
 * Sidecar transparent capture on a real kernel: a "node" namespace with a bridge, two "pods"
 * (namespaces on veth pairs), and an "external" namespace. Each pod runs an app (an HTTP server on
 * 9080, and curl as its client) and a Tollgate sidecar as uid 1337 behind the capture rules that
 * `tollgate init` writes (nftables). A dnsmasq in the external namespace is the pods' resolver
 * (cluster names -> ClusterIPs, the registered external host -> a TEST-NET address).
 *
 *   node      bridge 192.0.2.1/24, 198.51.100.1/24 towards external; forwards between them
 *   pod A     192.0.2.10 (productpage)   pod B 192.0.2.20 (reviews)
 *   external  198.51.100.10 (edition.cnn.com, dnsmasq :53), 198.51.100.11 (not in any registry)
 *   ClusterIPs 203.0.113.10 (productpage), 203.0.113.20 (reviews): owned by nobody, as with kube-proxy
 *             gone — only the sidecar can take a connection there.
 *
 * Every address is TEST-NET; nothing is routed to the host network; namespaces are per-process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessLogRecord } from '../../src/dataplane/observe/access-log.js';
import { waitFor } from '../helpers/net.js';
import { BIN, type ChildGate } from '../helpers/tollgate.js';
import { meshCert, type MeshCert } from '../helpers/mesh-pki.js';
import { makePki } from '../helpers/pki.js';
import { PodLab, podLabSkip, twoPodsConfig, type LabPod } from '../helpers/pod-lab.js';
import { X509Certificate } from 'node:crypto';
import { run } from '../helpers/tools.js';

const skip = podLabSkip('sidecar-capture-netns', ['dnsmasq']);

const POD_A = '192.0.2.10';
const POD_B = '192.0.2.20';
const EXTERNAL = '198.51.100.10';
const UNREGISTERED = '198.51.100.11';
const CLUSTER_IP_A = '203.0.113.10';
const CLUSTER_IP_B = '203.0.113.20';

describe('sidecar transparent capture: two pods, capture rules from tollgate init, sidecars as uid 1337', { skip, concurrency: false, timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-sidecar-'));
  chmodSync(dir, 0o755); // the sidecars run as uid 1337
  const lab = new PodLab({ prefix: 'tgs', pods: [{ key: 'a', ip: POD_A, app: 'productpage' }, { key: 'b', ip: POD_B, app: 'reviews' }], external: [EXTERNAL, UNREGISTERED], nameserver: EXTERNAL });
  const NS = { node: lab.nodeNs, a: lab.pod('a').ns, b: lab.pod('b').ns, ext: lab.externalNs! };
  const pods = { a: lab.pod('a'), b: lab.pod('b') };
  let dns: ChildProcess | undefined;
  let extServer: ChildProcess | undefined;
  const extLines: string[] = [];
  let byNameRecord: AccessLogRecord | undefined;

  const pki = makePki();
  const certs: Partial<Record<string, MeshCert>> = {};

  const startSidecar = (pod: LabPod, policy: 'REGISTRY_ONLY' | 'ALLOW_ANY', extra = ''): ChildGate => {
    const cfg = join(dir, `${pod.app}-${policy}${extra === '' ? '' : '-pa'}.yaml`);
    writeFileSync(cfg, twoPodsConfig(policy, extra));
    chmodSync(cfg, 0o644);
    const labels = join(dir, `${pod.app}.labels`);
    writeFileSync(labels, `app="${pod.app}"\n`);
    chmodSync(labels, 0o644);
    return lab.startSidecar(pod, ['-f', cfg, '--role', 'sidecar', '--labels-file', labels, '--dns-server', `${EXTERNAL}:53`, '--admin', 'off', '--status-ports', 'on', '--drain-timeout', '500', '--workload-cert-dir', certs[pod.app]!.dir]);
  };

  const waitReady = (pod: LabPod): Promise<void> => lab.waitReady(pod);
  const curl = (pod: LabPod, url: string, extra: string[] = []): Promise<{ code: string; body: string; stderr: string }> => lab.curl(pod, url, extra);

  before(async () => {
    await pki.ca('mesh-root');
    for (const pod of Object.values(pods)) certs[pod.app] = await meshCert(pki, 'mesh-root', 'default', pod.app);
    certs['outsider'] = await meshCert(pki, 'mesh-root', 'other', 'outsider');
    // The sidecars run as uid 1337 and read their certificate files.
    spawnSync('chmod', ['-R', 'a+rX', pki.dir]);
    lab.create();

    dns = spawn('ip', ['netns', 'exec', NS.ext, 'dnsmasq', '--no-daemon', '--port=53', `--listen-address=${EXTERNAL}`, '--bind-interfaces', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--local-ttl=1',
      `--host-record=edition.cnn.com,${EXTERNAL}`, `--host-record=unregistered.example,${UNREGISTERED}`,
      `--host-record=reviews.default.svc.cluster.local,${CLUSTER_IP_B}`, `--host-record=productpage.default.svc.cluster.local,${CLUSTER_IP_A}`], { stdio: 'ignore' });
    extServer = spawn('ip', ['netns', 'exec', NS.ext, process.execPath, '-e', `
for (const ip of ['${EXTERNAL}', '${UNREGISTERED}']) require('node:http').createServer((req, res) => {
  const line = JSON.stringify({ app: 'external', peer: req.socket.remoteAddress, local: req.socket.localAddress, host: req.headers.host });
  console.log(line); res.end(line);
}).listen(80, ip);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    extServer.stdout!.on('data', (d: Buffer) => extLines.push(...d.toString().split('\n').filter(Boolean)));

    await lab.startApps();
    for (const pod of Object.values(pods)) startSidecar(pod, 'REGISTRY_ONLY');
    for (const pod of Object.values(pods)) await waitReady(pod);
  });

  after(async () => {
    extServer?.kill('SIGKILL');
    dns?.kill('SIGKILL');
    await lab.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });

  it('the sidecar binds only its own ports, never the workload\'s (9080 stays the app\'s)', async () => {
    const r = await run('ip', ['netns', 'exec', NS.b, 'ss', '-Hltnp'], { timeoutMs: 5000 });
    const ports = (proc: string): string[] => r.stdout.split('\n').filter((l) => l.includes(proc)).map((l) => l.split(/\s+/)[3] ?? '');
    const sidecarPid = String(pods.b.sidecar!.child.pid);
    const all = r.stdout.split('\n').filter(Boolean);
    assert.ok(all.some((l) => l.includes(':9080')), r.stdout);
    const sidecarPorts = all.filter((l) => !l.includes(':9080')).map((l) => Number((l.split(/\s+/)[3] ?? '').split(':').pop()));
    assert.deepEqual([...new Set(sidecarPorts)].sort(), [15001, 15006, 15020, 15021, 15090], `${r.stdout} (sidecar ${sidecarPid}, ${ports('node').join(',')})`);
  });

  it('A -> B by Service short name: outbound on A, inbound on B, the app in B sees 127.0.0.6', async () => {
    const r = await curl(pods.a, 'http://reviews/by-name');
    assert.equal(r.code, '200', r.stderr + r.body);
    const seen = JSON.parse(r.body) as { app: string; peer: string; local: string; host: string };
    assert.equal(seen.app, 'reviews');
    assert.equal(seen.peer, '127.0.0.6');
    assert.equal(seen.local, `${POD_B}:9080`);
    assert.equal(seen.host, 'reviews');
    const out = await waitFor(() => pods.a.sidecar!.records().find((x) => x.path === '/by-name'), 5000, 'outbound log on A');
    byNameRecord = out;
    assert.equal(out.upstream_cluster, 'outbound|80||reviews.default.svc.cluster.local');
    assert.equal(out.downstream_local_address, `${CLUSTER_IP_B}:80`);
    assert.equal(out.upstream_host, `${POD_B}:9080`);
    const inb = await waitFor(() => pods.b.sidecar!.records().find((x) => x.path === '/by-name'), 5000, 'inbound log on B');
    assert.equal(inb.upstream_cluster, 'inbound|9080||');
    assert.equal(inb.downstream_local_address, `${POD_B}:9080`);
    assert.match(inb.upstream_local_address ?? '', /^127\.0\.0\.6:\d+$/);
    assert.match(inb.downstream_remote_address ?? '', new RegExp(`^${POD_A.replace(/\./g, '\\.')}:`));
    const metrics = await run('ip', ['netns', 'exec', NS.b, 'curl', '-sS', '--max-time', '3', 'http://127.0.0.1:15090/stats/prometheus'], { timeoutMs: 5000 });
    assert.match(metrics.stdout, /^istio_requests_total\{reporter="destination",.*destination_service="reviews\.default\.svc\.cluster\.local".*response_code="200".*\} [1-9]/m);
  });

  it('A -> B by ClusterIP and by FQDN', async () => {
    const byIp = await curl(pods.a, `http://${CLUSTER_IP_B}/by-ip`);
    assert.equal(byIp.code, '200', byIp.stderr);
    assert.equal((JSON.parse(byIp.body) as { peer: string }).peer, '127.0.0.6');
    const byFqdn = await curl(pods.a, 'http://reviews.default.svc.cluster.local/by-fqdn');
    assert.equal(byFqdn.code, '200', byFqdn.stderr);
  });

  it('hairpin: a pod calling its own Service reaches its own app through both directions of its sidecar', async () => {
    const r = await curl(pods.a, 'http://productpage/hairpin');
    assert.equal(r.code, '200', r.stderr + r.body);
    const seen = JSON.parse(r.body) as { app: string; peer: string };
    assert.equal(seen.app, 'productpage');
    assert.equal(seen.peer, '127.0.0.6');
    const recs = await waitFor(() => {
      const l = pods.a.sidecar!.records().filter((x) => x.path === '/hairpin');
      return l.length >= 2 ? l : undefined;
    }, 5000, 'outbound and inbound log on A');
    assert.deepEqual(recs.map((x) => x.upstream_cluster).sort(), ['inbound|9080||', 'outbound|80||productpage.default.svc.cluster.local']);
  });

  it('A -> registered external host works (resolved by the sidecar through DNS)', async () => {
    const r = await curl(pods.a, 'http://edition.cnn.com/echo');
    assert.equal(r.code, '200', r.stderr + r.body);
    assert.equal((JSON.parse(r.body) as { peer: string }).peer, POD_A);
    const rec = await waitFor(() => pods.a.sidecar!.records().find((x) => x.path === '/echo'), 5000, 'log');
    assert.equal(rec.upstream_cluster, 'outbound|80||edition.cnn.com');
  });

  it('REGISTRY_ONLY: an unregistered host is denied and logged with its reason; nothing reaches it', async () => {
    const before = extLines.filter((l) => l.includes(UNREGISTERED)).length;
    const r = await curl(pods.a, 'http://unregistered.example/nope');
    assert.equal(r.code, '502');
    const rec = await waitFor(() => pods.a.sidecar!.records().find((x) => x.authority === 'unregistered.example'), 5000, 'log');
    assert.equal(rec.response_flags, 'BLOCKED');
    assert.equal(rec.tollgate_reason, 'registry_only');
    // Raw TCP to a port no listener has: the virtual outbound listener's BlackHole.
    const tcp = await run('ip', ['netns', 'exec', NS.a, 'curl', '-sS', '--max-time', '3', `http://${UNREGISTERED}:8081/`], { timeoutMs: 5000 });
    assert.notEqual(tcp.status, 0);
    const bh = await waitFor(() => pods.a.sidecar!.records().find((x) => x.downstream_local_address === `${UNREGISTERED}:8081`), 5000, 'blackhole log');
    assert.equal(bh.tollgate_reason, 'registry_only');
    assert.equal(extLines.filter((l) => l.includes(UNREGISTERED)).length, before, 'the unregistered host saw nothing');
  });

  it('no escape: the app cannot bypass the sidecar, whatever address it dials (also as another uid)', async () => {
    // Dialing the external address directly by IP on port 80 still goes through the sidecar (HTTP
    // listener on 80): a Host the registry does not know is refused.
    const r = await run('ip', ['netns', 'exec', NS.a, 'setpriv', '--reuid=4242', '--regid=4242', '--clear-groups', 'curl', '-sS', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${UNREGISTERED}/escape`], { timeoutMs: 5000 });
    assert.equal(r.stdout, '502', r.stderr);
    assert.ok(!extLines.some((l) => l.includes('/escape')));
  });

  it('ALLOW_ANY: an unregistered destination passes through to the original destination', async () => {
    await pods.a.sidecar!.stop(2000);
    startSidecar(pods.a, 'ALLOW_ANY');
    await waitReady(pods.a);
    const r = await curl(pods.a, 'http://unregistered.example/through');
    assert.equal(r.code, '200', r.stderr + r.body);
    const seen = JSON.parse(r.body) as { local: string; peer: string };
    assert.equal(seen.local, UNREGISTERED);
    assert.equal(seen.peer, POD_A);
    const rec = await waitFor(() => pods.a.sidecar!.records().find((x) => x.path === '/through'), 5000, 'log');
    assert.equal(rec.upstream_cluster, 'PassthroughCluster');
    assert.equal(rec.upstream_host, `${UNREGISTERED}:80`);
  });

  it('trace --role sidecar on the original destination agrees with what the sidecars did', async () => {
    const traceOf = async (policy: string, url: string, dst: string, labels = 'app=productpage'): Promise<{ ok: boolean; flag?: string; reason?: string; steps: { step: string; value: string }[] }> => {
      const r = await run(process.execPath, [BIN, 'trace', '-f', join(dir, `productpage-${policy}.yaml`), '--role', 'sidecar', '-n', 'default', '-l', labels, '--original-dst', dst, '-o', 'json', url], { timeoutMs: 10_000 });
      return JSON.parse(r.stdout) as { ok: boolean; steps: { step: string; value: string }[] };
    };
    const value = (t: { steps: { step: string; value: string }[] }, step: string): string | undefined => t.steps.find((x) => x.step === step)?.value;
    // A -> B by name (logged on A under REGISTRY_ONLY; the sidecar now runs ALLOW_ANY, same routes)
    const byName = await traceOf('REGISTRY_ONLY', 'http://reviews/by-name', `${CLUSTER_IP_B}:80`);
    assert.equal(byName.ok, true);
    assert.equal(value(byName, 'cluster'), byNameRecord?.upstream_cluster);
    assert.equal(value(byName, 'endpoints'), byNameRecord?.upstream_host);
    assert.equal(value(byName, 'listener'), 'virtualOutbound -> 0.0.0.0_80');
    // Unregistered, REGISTRY_ONLY: blocked with the same reason the sidecar logged.
    const denied = await traceOf('REGISTRY_ONLY', 'http://unregistered.example/nope', `${UNREGISTERED}:80`);
    assert.equal(denied.ok, false);
    assert.equal(denied.flag, 'BLOCKED');
    assert.match(denied.reason ?? '', /^registry_only/);
    const rawTcp = await traceOf('REGISTRY_ONLY', `tcp://${UNREGISTERED}:8081`, `${UNREGISTERED}:8081`);
    assert.equal(rawTcp.ok, false);
    assert.equal(value(rawTcp, 'listener'), 'virtualOutbound');
    // ALLOW_ANY passthrough: the cluster and the endpoint the sidecar used.
    const through = await traceOf('ALLOW_ANY', 'http://unregistered.example/through', `${UNREGISTERED}:80`);
    const rec = pods.a.sidecar!.records().find((x) => x.path === '/through')!;
    assert.equal(value(through, 'cluster'), rec.upstream_cluster);
    assert.equal(value(through, 'endpoints'), rec.upstream_host);
  });

  it('readiness and metrics on the status ports, reached from outside the pod (excluded from capture)', async () => {
    const ready = await run('ip', ['netns', 'exec', NS.node, 'curl', '-sS', '--max-time', '3', '-w', '%{http_code}', `http://${POD_B}:15021/healthz/ready`], { timeoutMs: 5000 });
    assert.equal(ready.stdout, 'LIVE\n200');
    const merged = await run('ip', ['netns', 'exec', NS.node, 'curl', '-sS', '--max-time', '3', `http://${POD_B}:15020/stats/prometheus`], { timeoutMs: 5000 });
    assert.match(merged.stdout, /istio_requests_total\{reporter="destination"/);
  });

  it('InboundPassthrough: a port no Service declares reaches the app from 127.0.0.6, logged', async () => {
    // The app listens on 9080 only; a second listener on 9091 stands for a port no Service names.
    const extra = spawn('ip', ['netns', 'exec', NS.b, process.execPath, '-e', `require('node:net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(9091, '0.0.0.0', () => console.log('LISTEN'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => extra.stdout!.once('data', r));
      const r = await run('ip', ['netns', 'exec', NS.node, 'curl', '-sS', '--max-time', '3', `telnet://${POD_B}:9091`], { timeoutMs: 5000 });
      assert.equal(r.stdout.trim(), '127.0.0.6', r.stderr);
      const rec = await waitFor(() => pods.b.sidecar!.records().find((x) => x.upstream_cluster === 'InboundPassthroughCluster'), 5000, 'log');
      assert.equal(rec.downstream_local_address, `${POD_B}:9091`);
    } finally {
      extra.kill('SIGKILL');
    }
  });

  it('two sidecars talk mTLS automatically: B reports connection_security_policy mutual_tls with A\'s SPIFFE ID', async () => {
    const r = await curl(pods.a, 'http://reviews/over-mtls');
    assert.equal(r.code, '200', r.stderr + r.body);
    const metrics = await run('ip', ['netns', 'exec', NS.b, 'curl', '-sS', '--max-time', '3', 'http://127.0.0.1:15090/stats/prometheus'], { timeoutMs: 5000 });
    assert.match(metrics.stdout, /^istio_requests_total\{reporter="destination",.*connection_security_policy="mutual_tls",source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage",destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews"[^}]*\} [1-9]/m);
  });

  it('x-forwarded-client-cert: A\'s sidecar drops what the app wrote, B\'s inbound appends A\'s verified certificate (APPEND_FORWARD)', async () => {
    const r = await curl(pods.a, 'http://reviews/xfcc', ['-H', 'X-Forwarded-Client-Cert: URI=spiffe://cluster.local/ns/default/sa/admin']);
    assert.equal(r.code, '200', r.stderr + r.body);
    const seen = (JSON.parse(r.body) as { xfcc: string | null }).xfcc;
    assert.match(seen ?? '', /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews;Hash=[0-9a-f]{64};Subject="[^"]*";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage$/);
  });

  it('openssl s_client to B\'s inbound port: B\'s certificate, chained to the mesh root, with its SPIFFE ID', async () => {
    const c = certs['outsider']!;
    const r = await run('ip', ['netns', 'exec', NS.node, 'openssl', 's_client', '-connect', `${POD_B}:9080`, '-CAfile', c.root, '-cert', c.cert, '-key', c.key, '-verify_return_error', '-alpn', 'istio'], { input: 'Q\n', timeoutMs: 10_000 });
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/, r.stdout + r.stderr);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
    assert.equal(new X509Certificate(pem!).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/reviews');
  });

  it('PERMISSIVE serves a client without a mesh certificate; STRICT refuses it; portLevelMtls DISABLE opens just that port', async () => {
    const plain = (port: number) => run('ip', ['netns', 'exec', NS.node, 'curl', '-sS', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${POD_B}:${port}/plain`], { timeoutMs: 6000 });
    assert.equal((await plain(9080)).stdout, '200', 'PERMISSIVE (no PeerAuthentication): plaintext is served');
    const extra = `---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: reviews-open-port, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  portLevelMtls: {9092: {mode: DISABLE}}
`;
    const open = spawn('ip', ['netns', 'exec', NS.b, process.execPath, '-e', `require('node:http').createServer((q, s) => s.end('open')).listen(9092, '0.0.0.0', () => console.log('LISTEN'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => open.stdout!.once('data', r));
      await pods.b.sidecar!.stop(2000);
      startSidecar(pods.b, 'REGISTRY_ONLY', extra);
      await waitReady(pods.b);
      const refused = await plain(9080);
      assert.notEqual(refused.stdout, '200', 'STRICT: plaintext refused');
      const rec = await waitFor(() => pods.b.sidecar!.records().find((x) => x.tollgate_reason === 'mtls_required'), 5000, 'mtls_required log');
      assert.equal(rec.downstream_local_address, `${POD_B}:9080`);
      assert.equal((await plain(9092)).stdout, '200', 'portLevelMtls DISABLE: that port serves plaintext');
      const mesh = await curl(pods.a, 'http://reviews/strict-over-mtls');
      assert.equal(mesh.code, '200', 'a mesh caller still gets in (auto mTLS) ' + mesh.stderr);
    } finally {
      open.kill('SIGKILL');
    }
  });
});
