/** The CLI as a user runs it: the real bin in a child process, real files, exit codes and output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/pipeline.js';
import { makeCerts } from './helpers/net.js';

function tollgate(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), ...args], { cwd: ROOT, encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists the commands; each command has its own help; unknown commands and flags fail with 2', () => {
  const h = tollgate(['--help']);
  assert.equal(h.code, 0);
  for (const c of ['run', 'analyze', 'config-dump', 'trace']) assert.match(h.out, new RegExp(`\\n  ${c} `));
  assert.match(tollgate(['trace', '--help']).out, /tls:\/\/host:port/);
  assert.equal(tollgate(['frobnicate']).code, 2);
  const typo = tollgate(['analyse', '-f', 'x.yaml']);
  assert.equal(typo.code, 2);
  assert.match(typo.err, /unknown command "analyse"; did you mean "analyze"\?/);
  const bad = tollgate(['analyze', '--nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /Unknown option '--nope'.*see 'tollgate analyze --help'/);
});

test('analyze exits 1 on errors, 0 on a clean config, and explains every file', () => {
  const clean = tollgate(['analyze', '-f', 'test/fixtures/pipeline/egress-gateway.yaml']);
  assert.equal(clean.code, 0, clean.out + clean.err);
  assert.match(clean.out, /egress-gateway\.yaml: Deployment, Service, DestinationRule, ServiceEntry, 2 VirtualService, Gateway — 0 error\(s\)/);
  const broken = tollgate(['analyze', '-f', '-'], 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [x.example]\n  gateways: [nope]\n  http: [{route: [{destination: {host: x.example}}]}]\n');
  assert.equal(broken.code, 1);
  assert.match(broken.out, /Error \[TG_GATEWAY_NOT_FOUND\] VirtualService v\.default \(<stdin>:6\)/);
  assert.match(broken.out, /Error \[TG_DEST_NOT_IN_REGISTRY\]/);
  const json = tollgate(['analyze', '-o', 'json', '-f', '-'], 'kind: Namespace\nmetadata: {name: n}\n');
  assert.equal(json.code, 0);
  assert.equal(JSON.parse(json.out)[0].code, 'TG_CONFIG_ASSUMED_VERSION');
});

test('config-dump infers the identity from the only Gateway selector and says so on stderr', () => {
  const r = tollgate(['config-dump', '-f', 'test/fixtures/pipeline/egress-gateway.yaml']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /identity: gateway egress istio=egressgateway \(inferred from Gateway partner-egress\.egress/);
  const snap = JSON.parse(r.out);
  assert.deepEqual(snap.listeners.map((l: { name: string }) => l.name), ['0.0.0.0_443', '0.0.0.0_80']);
  assert.ok(snap.clusters.some((c: { name: string }) => c.name === 'outbound|443||api.partner.example'));
});

test('config with errors: config-dump refuses with the file:line', () => {
  const r = tollgate(['config-dump', '-f', '-'], 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [a]\n  resolution: MAYBE\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /\(<stdin>:6\): spec\.resolution "MAYBE" is not one of NONE, STATIC, DNS, DNS_ROUND_ROBIN/);
});

test('trace prints each decision, exits 0 when routed and 2 with a flag and a fix when not', () => {
  const ok = tollgate(['trace', '-f', 'test/fixtures/pipeline/egress-gateway.yaml', 'http://api.partner.example/x']);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /route\s+egress\/partners-out:0/);
  assert.match(ok.out, /cluster\s+outbound\|80\|\|api\.partner\.example/);
  assert.match(ok.out, /result: routed/);
  const no = tollgate(['trace', '-f', 'test/fixtures/pipeline/egress-gateway.yaml', 'tls://evil.example:443']);
  assert.equal(no.code, 2);
  assert.match(no.out, /result: FAILED \[NR\] sni_not_routed/);
  assert.match(no.out, /fix: add a tls route/);
  const json = JSON.parse(tollgate(['trace', '-o', 'json', '-f', 'test/fixtures/pipeline/egress-router.yaml', '--role', 'router', 'tcp://10.1.1.1:8443']).out);
  assert.equal(json.ok, true);
});

test('analyze of an empty directory is an error that says there is nothing to analyze', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-empty-'));
  try {
    const r = tollgate(['analyze', '-f', dir]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /\[TG_CONFIG_EMPTY\].*nothing to analyze/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('proxy-status and proxy-config with no control plane: one line naming the address, exit 1, no stack trace', () => {
  const certs = makeCerts(['localhost']);
  const token = join(certs.dir, 'token');
  writeFileSync(token, 'a-token-nobody-checks-here\n');
  const auth = ['--control-plane-ca', certs.cert, '--token-file', token];
  for (const args of [['proxy-status', '--control-plane', '127.0.0.1:1', ...auth], ['proxy-config', 'all', 'gw', '--control-plane', '127.0.0.1:1', ...auth]]) {
    const r = tollgate(args);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /cannot reach the control plane at 127\.0\.0\.1:1 \(ECONNREFUSED\)/);
    assert.doesNotMatch(r.err, /\n\s+at /);
  }
  certs.cleanup();
});

test('output into a pipe its reader closes early (| head -1): the command exits quietly with status 0', async () => {
  // 800 ServiceEntries: a sidecar's config-dump is about a megabyte, far more than a pipe buffers,
  // so the writes after the reader left fail with EPIPE.
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-pipe-'));
  try {
    const file = join(dir, 'many.yaml');
    const entry = (i: number) => `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext${i}, namespace: shop}\nspec:\n  hosts: [h${i}.example.com]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n  location: MESH_EXTERNAL\n`;
    writeFileSync(file, Array.from({ length: 800 }, (_, i) => entry(i)).join(''));
    const args = [join(ROOT, 'dist/src/cli/bin.js'), 'config-dump', '-f', file, '--role', 'sidecar', '-n', 'shop'];

    // The reader reads one chunk, then closes its end of the pipe (what head does after a line).
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    child.stdout.destroy();
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
    clearTimeout(timer);
    assert.ok(first.length < 1_000_000, `the reader left after ${first.length} bytes, long before the end`);
    assert.deepEqual({ code, signal, err }, { code: 0, signal: null, err: '' });

    // The same through a shell pipeline into head, with pipefail: the pipeline succeeds.
    const sh = spawnSync('bash', ['-c', 'set -o pipefail; "$@" | head -1', 'bash', process.execPath, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.deepEqual({ status: sh.status, out: sh.stdout, err: sh.stderr }, { status: 0, out: '{\n', err: '' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
