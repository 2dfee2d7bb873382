/**
 * The bundle `npm run build` makes (scripts/bundle.mjs, what `npm start`, the `tollgate` bin and the
 * image run) is a working Tollgate: built here into a directory of its own, it answers --version,
 * and `run -f` forks the snapshot worker from the bundle's directory and serves a request through
 * to a real upstream.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, spawnGate } from '../helpers/tollgate.js';

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/hello', headers: { host }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

it('the bundle starts, builds its snapshot in the worker and serves through to an upstream', async (t) => {
  // Inside the repository: the bundle finds its dependencies in node_modules above it.
  const outdir = join(REPO_ROOT, 'dist', `bundle-test-${process.pid}`);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bundle-'));
  const upstream = createServer((req, res) => res.end(`upstream saw ${req.url}`));
  t.after(() => {
    upstream.close();
    rmSync(outdir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle.mjs'), '--outdir', outdir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const bin = join(outdir, 'bin.js');
  assert.match(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }), /^tollgate \d+\.\d+\.\d+/);

  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const file = join(dir, 'edge.yaml');
  writeFileSync(
    file,
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up, namespace: edge}
spec:
  hosts: [up.example.test]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstreamPort}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: edge}
spec:
  selector: {app: edge}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: up, namespace: edge}
spec:
  hosts: [up.example.test]
  gateways: [edge]
  http:
  - route: [{destination: {host: up.example.test, port: {number: 80}}}]
`,
  );
  const g = spawnGate(['-f', file, '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--port-map', '80=0', '--listen-address-override', '127.0.0.1', '--allow-cidr', '127.0.0.0/8', '--admin', 'off', '--log-level', 'info', '--no-access-log'], [], {}, bin);
  t.after(() => g.stop(500));
  await g.waitForStderr('tollgate running', 20_000);
  const port = Number(/_80 -> [^:]+:(\d+)/.exec(g.stderr.join(''))?.[1] ?? 0);
  assert.ok(port > 0, g.stderr.join(''));
  assert.deepEqual(await get(port, 'up.example.test'), { status: 200, body: 'upstream saw /hello' });
});
