/**
 * The adoption loop, end to end on loopback: an egress gateway in report-only mode passes requests
 * to three hosts outside its registry (dnsmasq answers their names with local addresses served by
 * nginx), logs each as would_deny_registry and counts it; `tollgate suggest --admin` writes the
 * ServiceEntries; the gateway restarted enforcing on that output passes the three hosts and
 * refuses a fourth with a reason. Report-only still applies the SSRF guard and the source address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, startDnsmasq } from '../helpers/dns.js';
import { startNginx } from '../helpers/http.js';
import { loopbackAddress } from '../helpers/net.js';
import { adminPort } from '../../src/admin/server.js';
import { BIN, startGate } from '../helpers/tollgate.js';
import { requireTools, run } from '../helpers/tools.js';

const HOSTS = ['shop.example', 'pay.example', 'maps.example'] as const;

test('report -> suggest -> enforce: three observed hosts pass after enforcement, a fourth is refused with a reason', async (t) => {
  if (!requireTools(t, 'curl', 'nginx', 'dnsmasq')) return;
  const ips = [loopbackAddress(), loopbackAddress(), loopbackAddress(), loopbackAddress()];
  const metaIp = loopbackAddress();
  const srcIp = loopbackAddress();
  const webPort = await freeTcpPort();
  const nginx = await startNginx(
    () => ips.map((ip) => `  server { listen ${ip}:${webPort}; location / { return 200 "$host from $remote_addr\\n"; } }`).join('\n'),
    ips[0]!,
    webPort,
  );
  const names: Record<string, string> = { 'shop.example': ips[0]!, 'pay.example': ips[1]!, 'maps.example': ips[2]!, 'fourth.example': ips[3]!, 'metadata.example': metaIp };
  const dns = await startDnsmasq(names);
  const dir = mkdtempSync(join(tmpdir(), 'tg-loop-'));
  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '# no ServiceEntry yet: everything is outside the registry\n');
  const allow = join(dir, 'allow.yaml');
  // The SSRF guard refuses loopback; the test exempts exactly the nginx addresses (not metaIp).
  const common = ['--dns-server', dns.server, '--source-address', srcIp, ...ips.flatMap((ip) => ['--allow-cidr', ip])];
  try {
    const proxyPort = await freeTcpPort();
    const proxy = `http://127.0.0.1:${proxyPort}`;
    const report = await startGate(['-f', empty, '--explicit-proxy', `127.0.0.1:${proxyPort}`, '--report-only', '--connect-ports', String(webPort), '--admin', `127.0.0.1:${await freeTcpPort()}`, ...common]);
    try {
      for (const [i, host] of HOSTS.entries()) {
        for (let n = 0; n <= i; n++) {
          const r = await run('curl', ['-sS', '--max-time', '10', '-x', proxy, `http://${host}:${webPort}/`]);
          assert.equal(r.status, 0, r.stderr);
          assert.equal(r.stdout, `${host} from ${srcIp}\n`, 'passed as ALLOW_ANY would, from the configured source address');
        }
      }
      // A CONNECT tunnel outside the registry passes too (logged, counted as TLS: HTTPS_PROXY clients tunnel TLS).
      const tunnel = await run('curl', ['-sS', '--max-time', '10', '-p', '-x', proxy, `http://pay.example:${webPort}/`]);
      assert.equal(tunnel.stdout, `pay.example from ${srcIp}\n`, tunnel.stderr);
      const connectRec = await report.waitForLog((x) => x.method === 'CONNECT' && x.authority === `pay.example:${webPort}`);
      assert.equal(connectRec.tollgate_reason, 'would_deny_registry');
      assert.equal(report.metric('tollgate_would_deny_total', 'destination_host="pay.example",source_namespace="default",protocol="tls"'), 1);
      const rec = await report.waitForLog((x) => x.authority === `shop.example:${webPort}`);
      assert.equal(rec.response_code, 200);
      assert.equal(rec.tollgate_reason, 'would_deny_registry');
      assert.equal(rec.upstream_cluster, `report_only|${webPort}||shop.example`);
      assert.equal(report.metric('tollgate_would_deny_total', 'destination_host="maps.example"'), 3);
      assert.equal(report.metric('tollgate_denied_total', 'reason="would_deny_registry"'), 0, 'a pass is not a denial');
      // Still the SSRF guard: a name that resolves to an address nobody allowed is refused.
      const meta = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', proxy, `http://metadata.example:${webPort}/`]);
      assert.match(meta.stdout, /^HTTP\/1\.1 403 /);
      assert.match(meta.stdout, /x-tollgate-reason: ssrf_denied/i);

      const admin = `http://127.0.0.1:${adminPort(report.tg.admin!)}`;
      // Asynchronously: the gate runs in this process and must answer the admin request.
      const s = await run(process.execPath, [BIN, 'suggest', '--admin', admin, '-n', 'default', '-o', allow], { timeoutMs: 30_000 });
      assert.equal(s.status, 0, s.stderr);
    } finally {
      await report.stop();
    }
    const yaml = readFileSync(allow, 'utf8');
    for (const host of HOSTS) assert.match(yaml, new RegExp(`hosts:\\n\\s+- ${host.replace('.', '\\.')}\\n\\s+ports:\\n\\s+- number: ${webPort}\\n\\s+name: http-${webPort}\\n\\s+protocol: HTTP`));
    assert.match(yaml, /# observed maps\.example: 3 request\(s\)\/connection\(s\) on \d+\/HTTP, first \S+, last \S+\n# callers: /);
    assert.doesNotMatch(yaml, /metadata\.example/, 'refused traffic is not suggested');
    const analyzed = spawnSync(process.execPath, [BIN, 'analyze', '--quiet', '-f', allow], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(analyzed.status, 0, analyzed.stdout + analyzed.stderr);

    const enforcePort = await freeTcpPort();
    const enforce = await startGate(['-f', allow, '--explicit-proxy', `127.0.0.1:${enforcePort}`, ...common]);
    try {
      const p = `http://127.0.0.1:${enforcePort}`;
      for (const host of HOSTS) {
        const r = await run('curl', ['-sS', '--max-time', '10', '-x', p, `http://${host}:${webPort}/`]);
        assert.equal(r.stdout, `${host} from ${srcIp}\n`, `${host} passes under enforcement`);
        const rec = await enforce.waitForLog((x) => x.authority === `${host}:${webPort}`);
        assert.equal(rec.upstream_cluster, `outbound|${webPort}||${host}`, 'through its registry entry now');
        assert.equal(rec.tollgate_reason, undefined);
      }
      const fourth = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', p, `http://fourth.example:${webPort}/`]);
      assert.match(fourth.stdout, /^HTTP\/1\.1 403 /);
      assert.match(fourth.stdout, /x-tollgate-reason: proxy_not_in_registry/i);
      const denied = await enforce.waitForLog((x) => x.authority === `fourth.example:${webPort}`);
      assert.equal(denied.tollgate_reason, 'proxy_not_in_registry');
      assert.equal(enforce.metric('tollgate_would_deny_total'), 0);
    } finally {
      await enforce.stop();
    }
  } finally {
    await dns.stop();
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
