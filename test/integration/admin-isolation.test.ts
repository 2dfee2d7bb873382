/**
 * The proxy's own admin is never reachable through one of its listeners, even when the SSRF guard
 * is told to allow loopback (`--allow-cidr 127.0.0.0/8`) and a ServiceEntry points at it:
 *  - one process: an HTTP route and a TCP route to the admin port are refused (BLOCKED self_connect);
 *  - `--workers 2`: each worker refuses the primary's admin port too (a worker only knew its own
 *    ports), and the workers' private admins listen on unix sockets, so there is no TCP port to reach.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { request } from 'node:http';
import type { AccessLogRecord } from '../../src/dataplane/observe/access-log.js';
import { freeTcpPort } from '../helpers/dns.js';
import { hostRequest, httpGet } from '../helpers/http.js';
import { egressGateway, virtualService } from '../helpers/istio-yaml.js';
import { tcpExchange, waitFor } from '../helpers/net.js';
import { BIN, EGRESS_GATEWAY_ARGS, startGateWithConfig, tempConfig } from '../helpers/tollgate.js';

/** ServiceEntries that point at 127.0.0.1:<adminPort> over HTTP (admin.test:80) and TCP (admin-tcp.test:9000). */
function toAdmin(adminPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: admin, namespace: egress}
spec: {hosts: [admin.test], ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${adminPort}}], location: MESH_EXTERNAL, resolution: STATIC, endpoints: [{address: 127.0.0.1}]}
---
${egressGateway(['admin.test'])}${virtualService('admin', 'egress', ['admin.test'], ['egress'], 'http:\n- route: [{destination: {host: admin.test}}]')}`;
}

function socketGet(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('the admin is never reachable through a listener', () => {
  it('one process, loopback allowed: HTTP and TCP routes to the admin port are refused as self_connect', async () => {
    const admin = await freeTcpPort();
    const tcp = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: admin-tcp, namespace: egress}
spec: {hosts: [admin-tcp.test], addresses: [127.0.0.1/32], ports: [{number: 9000, name: tcp, protocol: TCP, targetPort: ${admin}}], location: MESH_EXTERNAL, resolution: STATIC, endpoints: [{address: 127.0.0.1}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress-tcp, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 9000, name: tcp, protocol: TCP}, hosts: [admin-tcp.test]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: admin-tcp, namespace: egress}
spec:
  hosts: [admin-tcp.test]
  gateways: [egress-tcp]
  tcp: [{route: [{destination: {host: admin-tcp.test, port: {number: 9000}}}]}]
`;
    const { gate, cfg } = await startGateWithConfig(toAdmin(admin) + tcp, [...EGRESS_GATEWAY_ARGS, '--port-map', '9000=0', '--admin', `127.0.0.1:${admin}`, '--allow-cidr', '127.0.0.0/8']);
    try {
      assert.equal((await httpGet(admin, '/ready')).status, 200, 'the admin itself is up');
      const r = await hostRequest(gate.port(80), 'admin.test', { path: '/config_dump' });
      assert.equal(r.status, 403);
      assert.ok(!r.body.includes('"listeners"'), 'no admin content');
      const rec = await gate.waitForLog((x) => x.authority === 'admin.test');
      assert.equal(rec.tollgate_reason, 'self_connect');
      assert.equal(rec.response_flags, 'BLOCKED');
      const t = await tcpExchange('127.0.0.1', gate.port(9000), 'GET /config_dump HTTP/1.0\r\n\r\n', { timeoutMs: 3000 });
      assert.equal(t.data, '', 'the TCP route relays nothing from the admin');
      await gate.waitForLog((x) => x.tollgate_reason === 'self_connect' && x.method === null);
    } finally {
      await gate.stop();
      cfg.cleanup();
    }
  });

  it('--workers 2, loopback allowed: a route to the primary admin is refused by the worker; worker admins are unix sockets', async (t) => {
    const admin = await freeTcpPort();
    const port = await freeTcpPort();
    const cfg = tempConfig(toAdmin(admin));
    const child = spawn(process.execPath, [BIN, 'run', '-f', cfg.path, '--workers', '2', ...EGRESS_GATEWAY_ARGS.filter((a) => a !== '--port-map' && a !== '80=0'), '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--allow-cidr', '127.0.0.0/8', '--drain-timeout', '500', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    t.after(() => {
      child.kill('SIGKILL');
      cfg.cleanup();
    });
    let ready = 0;
    for (let i = 0; i < 150 && ready !== 200; i++) {
      ready = (await httpGet(admin, '/ready')).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(ready, 200, `primary ready: ${stderr}`);
    const workers = JSON.parse((await httpGet(admin, '/workers')).body) as { admin: string }[];
    assert.equal(workers.length, 2);
    for (const w of workers) {
      assert.ok(w.admin.startsWith('/'), `a socket path, not a TCP address: ${w.admin}`);
      assert.equal(statSync(dirname(w.admin)).mode & 0o777, 0o700, 'only this user can reach the socket');
      assert.equal(await socketGet(w.admin, '/ready'), 200);
    }
    // Each request may land on either worker: every one must be refused.
    for (let i = 0; i < 6; i++) {
      const r = await hostRequest(port, 'admin.test', { path: '/stats/prometheus' });
      assert.equal(r.status, 403, `request ${i}: ${r.body}`);
    }
    await waitFor(() => stdout.split('\n').filter((l) => l.includes('self_connect')).length >= 6, 5000, 'six self_connect log lines');
    const recs = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AccessLogRecord);
    assert.ok(recs.filter((r) => r.authority === 'admin.test').every((r) => r.tollgate_reason === 'self_connect'), JSON.stringify(recs));
  });
});
