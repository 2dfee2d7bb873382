/**
 * `tollgate run -f FILE --watch` builds each new snapshot in a child process; the serving process
 * applies what is valid and keeps the running snapshot otherwise:
 *  - bad YAML is rejected with the file and line, as at start-up;
 *  - an edit that leaves the files with no objects is refused (an emptied file is not a config);
 *  - a valid edit is applied (a new version, its listener bound and the old one drained).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGate } from '../helpers/tollgate.js';
import { waitFor } from '../helpers/net.js';

function gateway(hosts: readonly string[], port = 80): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: edge}
spec:
  selector: {app: edge}
  servers:
  - port: {number: ${port}, name: http, protocol: HTTP}
    hosts: [${hosts.join(', ')}]
`;
}

function httpStatus(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

it('run --watch: bad YAML and an emptied file are refused with the reason, a valid edit is applied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-watch-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, gateway(['a.example.test']));
  const g = spawnGate(['-f', file, '--watch', '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--port-map', '80=0', '--port-map', '8080=0', '--listen-address-override', '127.0.0.1', '--admin', 'off', '--log-level', 'info']);
  t.after(async () => {
    await g.stop(500);
    rmSync(dir, { recursive: true, force: true });
  });
  await g.waitForStderr('tollgate running', 20_000);
  const port = Number(/_80 -> [^:]+:(\d+)/.exec(g.stderr.join(''))?.[1] ?? 0);
  assert.ok(port > 0, g.stderr.join(''));
  const first = /tollgate running snapshot ([0-9a-f]{16})/.exec(g.stderr.join(''))?.[1];
  assert.ok(first, g.stderr.join(''));
  const served = await httpStatus(port, 'a.example.test');

  writeFileSync(file, `${gateway(['a.example.test'])}  bad: [unclosed\n`);
  await g.waitForStderr('config change rejected', 20_000);
  assert.match(g.stderr.join(''), new RegExp(`config change rejected, keeping ${first}:\\n.*edge\\.yaml:\\d+`));
  assert.equal(await httpStatus(port, 'a.example.test'), served, 'the running snapshot still serves');

  const before = g.stderr.join('').length;
  writeFileSync(file, '');
  await waitFor(() => g.stderr.join('').slice(before).includes('config change rejected'), 20_000, 'empty config refused');
  assert.match(g.stderr.join('').slice(before), new RegExp(`keeping ${first}: the config files now yield no objects \\(the running config has 1\\)`));
  assert.equal(await httpStatus(port, 'a.example.test'), served);

  writeFileSync(file, gateway(['a.example.test'], 8080));
  await g.waitForStderr('config change applied', 20_000);
  const applied = /config change applied.*"version":"([0-9a-f]{16})"/.exec(g.stderr.join(''))?.[1];
  assert.ok(applied !== undefined && applied !== first, g.stderr.join(''));
  assert.match(g.stderr.join(''), /snapshot applied .*"added":\["0\.0\.0\.0_8080"\].*"removed":\["0\.0\.0\.0_80"\]/);
  assert.equal(g.child.exitCode, null);
});
