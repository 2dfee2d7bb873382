/**
 * AuthorizationPolicy at a live gateway, with real curl from two loopback source addresses: an
 * ALLOW policy for one path prefix, method and ipBlock; a DENY policy that beats it; a dry-run
 * policy that only logs; a TCP listener where a DENY policy closes the connection. Each outcome is
 * checked on the wire (status, body, bytes reaching the upstream), in the access log (reason and
 * the policy/rule detail) and in the metrics; `trace` must report the same verdict.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { runTrace } from '../../src/cli/trace.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import { listen, loopbackAddress, tcpExchange } from '../helpers/net.js';
import { identity, loadYaml } from '../helpers/pipeline.js';
import { EDGE_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';
import { freeTcpPort } from '../helpers/dns.js';
import { parseCidr } from '../../src/net/ip.js';

const TRACE_FLAGS = { allowCidrs: [parseCidr('127.0.0.0/8')!], dnsServers: [] };

const ready = haveTool('curl');
const skip = ready ? false : 'needs curl';
if (!ready && isCI) throw new Error(`authz-gateway: ${skip}; CI=true`);

function config(upIp: string, httpPort: number, tcpPort: number, allowedIp: string, otherIp: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: edge}
spec:
  hosts: [app.test]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: ${upIp}, ports: {http: ${httpPort}, tcp: ${tcpPort}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [app.test]}
  - {port: {number: 5432, name: tcp, protocol: TCP}, hosts: [app.test]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: edge}
spec:
  hosts: [app.test]
  gateways: [gw]
  http: [{route: [{destination: {host: app.test, port: {number: 80}}}]}]
  tcp: [{match: [{port: 5432}], route: [{destination: {host: app.test, port: {number: 5432}}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-office, namespace: edge}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {ipBlocks: ["${allowedIp}/32"]}}]
    to: [{operation: {methods: [GET], paths: ["/public/*"]}}]
  - to: [{operation: {ports: ["5432"]}}]
  - from: [{source: {ipBlocks: ["${allowedIp}"]}}]
    to: [{operation: {methods: [CONNECT], hosts: [app.test]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-secret, namespace: edge}
spec:
  action: DENY
  # ports keeps it off the TCP listener: on TCP a DENY rule ignores paths and would deny every connection.
  rules: [{to: [{operation: {paths: ["/public/secret*"], ports: ["80"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: beta-off, namespace: edge, annotations: {tollgate.io/dry-run: "true"}}
spec:
  action: DENY
  rules: [{when: [{key: "request.headers[x-beta]", values: ["*"]}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-db-other, namespace: edge}
spec:
  action: DENY
  rules: [{from: [{source: {ipBlocks: ["${otherIp}"]}}], to: [{operation: {ports: ["5432"]}}]}]
`;
}

describe('AuthorizationPolicy at a gateway (curl, TCP)', { skip }, () => {
  const upIp = loopbackAddress();
  const allowedIp = loopbackAddress();
  const otherIp = loopbackAddress();
  let httpUp: Server;
  let tcpUp: TcpServer;
  let httpPort = 0;
  let tcpPort = 0;
  const served: string[] = [];
  let tcpAccepted = 0;
  let gate: TestGate;
  let cleanup: () => void = () => undefined;
  let yaml = '';
  let proxyPort = 0;

  before(async () => {
    httpUp = createHttpServer((req, res) => {
      served.push(req.url ?? '');
      res.end('upstream');
    });
    httpPort = await listen(httpUp, upIp);
    tcpUp = createTcpServer((s) => {
      tcpAccepted++;
      s.on('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    tcpPort = await new Promise<number>((resolve) => tcpUp.listen(0, upIp, () => resolve((tcpUp.address() as { port: number }).port)));
    yaml = config(upIp, httpPort, tcpPort, allowedIp, otherIp);
    proxyPort = await freeTcpPort();
    const started = await startGateWithConfig(yaml, [...EDGE_GATEWAY_ARGS.map((a) => (a === '80=0' ? '80=0,5432=0' : a)), '--allow-cidr', '127.0.0.0/8', '--explicit-proxy', `127.0.0.1:${proxyPort}`, '--connect-ports', '5432']);
    gate = started.gate;
    cleanup = () => started.cfg.cleanup();
  });
  after(async () => {
    await gate?.stop();
    cleanup();
    httpUp?.close();
    tcpUp?.close();
  });

  const curl = async (from: string, path: string, extra: string[] = []): Promise<{ code: string; body: string }> => {
    const r = await run('curl', ['-s', '--max-time', '10', '--interface', from, '-H', 'Host: app.test', ...extra, '-w', '\n%{http_code}', `http://127.0.0.1:${gate.port(80)}${path}`], { timeoutMs: 15_000 });
    const lines = r.stdout.split('\n');
    return { code: lines.pop() ?? '', body: lines.join('\n') };
  };

  const traceHttp = async (from: string, path: string, method = 'GET') => {
    const loaded = loadYaml(yaml);
    const snapshot = buildSnapshot(loaded.model, identity('gateway', 'edge', { istio: 'egressgateway' }));
    return runTrace(loaded.model, snapshot, { scheme: 'http', host: 'app.test', port: 80, path, query: '', method, headers: {}, sourceIp: from }, TRACE_FLAGS);
  };

  it('ALLOW: the allowed source, method and path prefix reach the upstream', async () => {
    const r = await curl(allowedIp, '/public/page');
    assert.deepEqual(r, { code: '200', body: 'upstream' });
    assert.ok(served.includes('/public/page'));
    const t = await traceHttp(allowedIp, '/public/page');
    assert.equal(t.ok, true);
    assert.match(t.steps.find((s) => s.step === 'authorization')?.value ?? '', /allowed by ns\[edge\]-policy\[allow-office\]-rule\[0\]/);
  });

  it('ALLOW: another source, another method or another path is denied with 403 RBAC: access denied, never forwarded', async () => {
    for (const [from, path, extra] of [[otherIp, '/public/page', []], [allowedIp, '/private', []], [allowedIp, '/public/x', ['-X', 'POST']]] as const) {
      const before = served.length;
      const r = await curl(from, path, [...extra]);
      assert.deepEqual(r, { code: '403', body: 'RBAC: access denied' }, `${from} ${path}`);
      assert.equal(served.length, before, 'nothing reached the upstream');
    }
    const log = await gate.waitForLog((l) => l.path === '/private' && l.response_code === 403);
    assert.equal(log.tollgate_reason, 'rbac_denied');
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[none]');
    assert.ok(gate.metric('tollgate_rbac_total', 'policy="none",result="denied"') >= 3);
    const t = await traceHttp(otherIp, '/public/page');
    assert.equal(t.ok, false);
    assert.equal(t.status, 403);
    assert.equal(t.reason, 'rbac_denied');
  });

  it('DENY beats ALLOW and names the policy and rule', async () => {
    const before = served.length;
    const r = await curl(allowedIp, '/public/secret');
    assert.deepEqual(r, { code: '403', body: 'RBAC: access denied' });
    assert.equal(served.length, before);
    const log = await gate.waitForLog((l) => l.path === '/public/secret');
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[ns[edge]-policy[deny-secret]-rule[0]]');
    assert.equal(gate.metric('tollgate_rbac_total', 'policy="edge/deny-secret",result="denied"'), 1);
    const t = await traceHttp(allowedIp, '/public/secret');
    assert.equal(t.decision?.detail, log.response_code_details);
  });

  it('dry-run: the request passes, the log says which policy would have denied it', async () => {
    const r = await curl(allowedIp, '/public/beta', ['-H', 'x-beta: 1']);
    assert.deepEqual(r, { code: '200', body: 'upstream' });
    const log = await gate.waitForLog((l) => l.path === '/public/beta');
    assert.equal(log.response_code, 200);
    assert.equal(log.tollgate_reason, 'rbac_dry_run_denied');
    assert.equal(log.response_code_details, 'rbac_dry_run_denied_matched_policy[ns[edge]-policy[beta-off]-rule[0]]');
    assert.equal(gate.metric('tollgate_rbac_total', 'policy="edge/beta-off",result="dry_run_denied"'), 1);
    assert.equal(gate.metric('tollgate_denied_total', 'reason="rbac_dry_run_denied"'), 0, 'a dry run is not a denial');
  });

  it('TCP: a DENY policy closes the connection before anything is dialed; others pass', async () => {
    const ok = await tcpExchange('127.0.0.1', gate.port(5432), 'ping', { localAddress: allowedIp, timeoutMs: 5000 });
    assert.equal(ok.data, 'ping');
    const accepted = tcpAccepted;
    const denied = await tcpExchange('127.0.0.1', gate.port(5432), 'ping', { localAddress: otherIp, timeoutMs: 5000 });
    assert.equal(denied.data, '');
    assert.notEqual(denied.closedBy, 'timeout');
    assert.equal(tcpAccepted, accepted, 'the upstream never saw the denied connection');
    const log = await gate.waitForLog((l) => l.path === null && l.tollgate_reason === 'rbac_denied' && l.downstream_remote_address.startsWith(otherIp + ':'));
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[ns[edge]-policy[deny-db-other]-rule[0]]');
    const loaded = loadYaml(yaml);
    const snapshot = buildSnapshot(loaded.model, identity('gateway', 'edge', { istio: 'egressgateway' }));
    const t = await runTrace(loaded.model, snapshot, { scheme: 'tcp', host: 'app.test', port: 5432, path: '/', query: '', method: 'GET', headers: {}, sourceIp: otherIp }, TRACE_FLAGS);
    assert.equal(t.ok, false);
    assert.equal(t.reason, 'rbac_denied');
    assert.equal(t.detail, log.response_code_details);
  });

  it('explicit proxy: CONNECT is authorized (method CONNECT, host the target) before anything is dialed', async () => {
    const connect = 'CONNECT app.test:5432 HTTP/1.1\r\nHost: app.test:5432\r\n\r\n';
    const ok = await tcpExchange('127.0.0.1', proxyPort, connect, { localAddress: allowedIp, timeoutMs: 1500 });
    assert.match(ok.data, /^HTTP\/1\.1 200/);
    const accepted = tcpAccepted;
    const denied = await tcpExchange('127.0.0.1', proxyPort, connect, { localAddress: otherIp, timeoutMs: 5000 });
    assert.match(denied.data, /^HTTP\/1\.1 403/);
    assert.match(denied.data, /RBAC: access denied$/);
    assert.equal(tcpAccepted, accepted);
    const log = await gate.waitForLog((l) => l.tollgate_reason === 'rbac_denied' && l.downstream_local_address.endsWith(`:${proxyPort}`));
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[none]');
  });
});
