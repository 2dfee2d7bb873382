/**
 * A snapshot is compiled completely before it is applied: a Gateway whose certificate cannot be
 * loaded is not "ready and then dropping every handshake", it is a rejected snapshot —
 *  - `tollgate run` exits non-zero at start-up, naming the chain, the Gateway and the file;
 *  - `tollgate run --watch` logs the rejection and keeps serving the previous snapshot (HTTPS works);
 *  - a proxy of the control plane NACKs it with the reason and keeps serving the previous one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs, startFromControlPlane } from '../../src/cli/run.js';
import { makeCerts, waitFor, type Certs } from '../helpers/net.js';
import { spawnGate } from '../helpers/tollgate.js';
import { requireTools } from '../helpers/tools.js';
import { startWatchedControlPlane } from '../helpers/watched-control-plane.js';

const QUIET = { silentAccessLog: true, logOut: { write: () => true } };

function config(cert: string, key: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: edge}
spec:
  selector: {app: edge}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [www.example.test]
    tls: {mode: SIMPLE, serverCertificate: ${cert}, privateKey: ${key}}
`;
}

/** Status of an HTTPS request through the gateway (the certificate verified against `certs`). */
function httpsStatus(port: number, certs: Certs): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: 'www.example.test', headers: { host: 'www.example.test' }, ca: certs.certPem, path: '/', timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function tempDir(): { dir: string; file: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tg-compile-'));
  return { dir, file: join(dir, 'edge.yaml'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('a snapshot whose TLS certificate cannot be loaded is rejected', { concurrency: false }, () => {
  it('tollgate run exits non-zero at start-up with the reason', async (t) => {
    const d = tempDir();
    t.after(() => d.cleanup());
    writeFileSync(d.file, config(join(d.dir, 'missing-cert.pem'), join(d.dir, 'missing-key.pem')));
    const g = spawnGate(['-f', d.file, '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--port-map', '443=0', '--admin', 'off']);
    t.after(() => g.kill('SIGKILL'));
    const code = await g.exit();
    const err = g.stderr.join('');
    assert.notEqual(code, 0, err);
    assert.match(err, /TLS certificate unavailable: cannot read serverCertificate .*missing-cert\.pem \(ENOENT\)/);
    assert.match(err, /Gateway edge\/edge, .*edge\.yaml:\d+/, 'names the Gateway and where it is');
  });

  it('tollgate run --watch keeps serving the previous snapshot', async (t) => {
    if (!requireTools(t, 'openssl')) return;
    const certs = makeCerts(['www.example.test']);
    const d = tempDir();
    t.after(() => {
      certs.cleanup();
      d.cleanup();
    });
    writeFileSync(d.file, config(certs.cert, certs.key));
    const g = spawnGate(['-f', d.file, '--watch', '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--port-map', '443=0', '--listen-address-override', '127.0.0.1', '--admin', 'off', '--log-level', 'info']);
    t.after(() => g.stop(500));
    await g.waitForStderr('snapshot applied', 15_000);
    await g.waitForStderr('tollgate running', 15_000);
    const port = Number(/_443 -> [^:]+:(\d+)/.exec(g.stderr.join(''))?.[1] ?? 0);
    assert.ok(port > 0, g.stderr.join(''));
    assert.equal(await httpsStatus(port, certs), 404);
    writeFileSync(d.file, config(join(d.dir, 'gone.pem'), certs.key));
    await g.waitForStderr('could not be applied', 15_000);
    assert.match(g.stderr.join(''), /could not be applied, keeping [0-9a-f]{16}: .*TLS certificate unavailable: cannot read serverCertificate .*gone\.pem/);
    assert.equal(await httpsStatus(port, certs), 404, 'the previous snapshot still terminates TLS');
    assert.equal(g.child.exitCode, null);
  });

  it('a proxy of the control plane NACKs it with the reason and keeps serving', async (t) => {
    if (!requireTools(t, 'openssl')) return;
    const certs = makeCerts(['www.example.test']);
    const d = tempDir();
    writeFileSync(d.file, config(certs.cert, certs.key));
    const cpw = await startWatchedControlPlane(d.dir);
    const { port: cpPort, auth } = cpw;
    const px = await startFromControlPlane(parseRunArgs(['--control-plane', `127.0.0.1:${cpPort}`, ...auth.runArgs('edge'), '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--name', 'gw-1', '--admin', 'off', '--listen-address-override', '127.0.0.1', '--port-map', '443=0', '--log-level', 'error']), QUIET);
    t.after(async () => {
      await px.stop(100);
      await cpw.close();
      certs.cleanup();
      d.cleanup();
    });
    await waitFor(() => px.runtime.ready, 10_000, 'proxy ready');
    const port = px.runtime.boundPortOf(443) ?? 0;
    assert.equal(await httpsStatus(port, certs), 404);
    const good = px.runtime.current?.snapshot.version;
    writeFileSync(d.file, config(join(d.dir, 'gone.pem'), certs.key));
    const p = await waitFor(() => cpw.controlPlane.proxies().find((x) => x.node.name === 'gw-1' && x.state === 'NACKED'), 10_000, 'gw-1 NACKED');
    assert.match(p.lastError ?? '', /TLS certificate unavailable: cannot read serverCertificate .*gone\.pem \(ENOENT\)/);
    assert.equal(px.runtime.current?.snapshot.version, good);
    assert.equal(await httpsStatus(port, certs), 404, 'the previous snapshot still terminates TLS');
  });
});
