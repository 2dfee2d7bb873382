/**
 * ClusterManager and DnsCache against a programmable DNS server and real loopback sockets:
 * NC/UH/DF failures, STATIC/STRICT_DNS/LOGICAL_DNS/ORIGINAL_DST resolution, TTL caching, the SSRF
 * guard (incl. IPv6-embedded IPv4), allowedAddresses and --allow-cidr, self-connect, source
 * address binding and fail-closed, and "dial the IP that was checked" (DNS rebinding).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { parseCidr } from '../../net/ip.js';
import type { Cluster, Endpoint, Snapshot } from '../../snapshot/types.js';
import { CompiledSnapshot } from '../route/compile.js';
import { ClusterManager } from './cluster-manager.js';
import { DnsCache } from './dns.js';
import { startFakeDns, type FakeDns } from '../../../test/helpers/dns.js';

function cluster(name: string, type: Cluster['type'], extra: Partial<Cluster> = {}): Cluster {
  return { name, type, serviceHost: extra.serviceHost ?? name, port: extra.port ?? 443, protocol: 'TCP', connectTimeoutMs: 1000, lbPolicy: 'ROUND_ROBIN', explicitAddresses: type === 'STATIC', ...extra };
}

function snapshot(clusters: [Cluster, Endpoint[]][], egressIps: Snapshot['policy']['egressIps'] = []): CompiledSnapshot {
  return new CompiledSnapshot({
    version: 'test',
    proxy: { role: 'gateway', namespace: 'ns', name: '', labels: {} },
    listeners: [],
    routes: [],
    clusters: clusters.map(([c]) => c),
    endpoints: clusters.map(([c, e]) => ({ clusterName: c.name, endpoints: e })),
    policy: { outboundTrafficPolicy: 'REGISTRY_ONLY', egressIps },
  });
}

describe('DnsCache', () => {
  let dns: FakeDns;
  before(async () => {
    dns = await startFakeDns();
  });
  after(() => dns.close());

  it('caches answers for their TTL, re-queries after it, dedupes concurrent lookups', async () => {
    let n = 0;
    dns.set('ttl.example', () => ({ addresses: [n++ === 0 ? '203.0.113.1' : '203.0.113.2'], ttl: 1 }));
    const c = new DnsCache({ servers: [dns.server] });
    const [a, b] = await Promise.all([c.resolve('ttl.example', 'V4_ONLY'), c.resolve('ttl.example', 'V4_ONLY')]);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(a.ok && a.addresses, ['203.0.113.1']);
    assert.equal(dns.queries.get('ttl.example'), 1, 'one query for two concurrent lookups');
    const cached = await c.resolve('ttl.example', 'V4_ONLY');
    assert.ok(cached.ok && cached.cached);
    assert.equal(dns.queries.get('ttl.example'), 1);
    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await c.resolve('ttl.example', 'V4_ONLY');
    assert.deepEqual(fresh.ok && fresh.addresses, ['203.0.113.2']);
    assert.equal(dns.queries.get('ttl.example'), 2);
  });

  it('TTL 0 is not cached; NXDOMAIN and timeouts are failures, not cached', async () => {
    dns.set('zero.example', () => ({ addresses: ['203.0.113.9'], ttl: 0 }));
    const c = new DnsCache({ servers: [dns.server], timeoutMs: 200, tries: 1 });
    await c.resolve('zero.example', 'V4_ONLY');
    await c.resolve('zero.example', 'V4_ONLY');
    assert.equal(dns.queries.get('zero.example'), 2);
    const nx = await c.resolve('nx.example', 'V4_ONLY');
    assert.equal(nx.ok, false);
    dns.set('slow.example', () => 'drop');
    const slow = await c.resolve('slow.example', 'V4_ONLY');
    // It resolved (as a failure) at all: the DNS timeout ended the wait, once (tries: 1).
    assert.equal(slow.ok, false);
    assert.equal(dns.queries.get('slow.example'), 1, 'one try, as configured');
  });
});

describe('DnsCache when the resolver fails', () => {
  let dns: FakeDns;
  before(async () => {
    dns = await startFakeDns();
  });
  after(() => dns.close());

  it('serves the last good answer (counted) for at most maxStaleSec; NXDOMAIN is remembered, not re-queried', async () => {
    let clock = 1_000_000;
    let stale = 0;
    const c = new DnsCache({ servers: [dns.server], timeoutMs: 200, tries: 1, maxStaleSec: 10, staleRetrySec: 2, negativeTtlSec: 5, now: () => clock, onStale: () => stale++ });
    dns.set('st.example', () => ({ addresses: ['203.0.113.5'], ttl: 1 }));
    assert.ok((await c.resolve('st.example', 'V4_ONLY')).ok);
    dns.set('st.example', () => 'drop');
    clock += 5000;
    const s1 = await c.resolve('st.example', 'V4_ONLY');
    assert.ok(s1.ok && s1.stale && s1.addresses[0] === '203.0.113.5', JSON.stringify(s1));
    assert.equal(stale, 1);
    assert.deepEqual(c.peek('st.example', 'V4_ONLY'), ['203.0.113.5'], 'stale answers are served without waiting for the resolver');
    clock += 7000; // past expiry (1 s) + maxStale (10 s)
    const gone = await c.resolve('st.example', 'V4_ONLY');
    assert.equal(gone.ok, false);

    dns.set('nx2.example', () => 'nxdomain');
    assert.equal((await c.resolve('nx2.example', 'V4_ONLY')).ok, false);
    assert.equal((await c.resolve('nx2.example', 'V4_ONLY')).ok, false);
    assert.equal(dns.queries.get('nx2.example'), 1, 'negative answer cached');
    clock += 6000;
    await c.resolve('nx2.example', 'V4_ONLY');
    assert.equal(dns.queries.get('nx2.example'), 2, 'and forgotten after negativeTtlSec');
  });
});

describe('ClusterManager', () => {
  let dns: FakeDns;
  let server: Server;
  let port: number;
  const peers: string[] = [];

  before(async () => {
    dns = await startFakeDns();
    server = createServer((s) => {
      peers.push(s.remoteAddress ?? '');
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await dns.close();
    await new Promise((r) => server.close(r));
  });

  const mgr = (extra: ConstructorParameters<typeof ClusterManager>[0] = {}): ClusterManager => new ClusterManager({ dnsServers: [dns.server], dnsTimeoutMs: 300, dnsTries: 1, ...extra });

  it('NC for an unknown cluster, UH for a cluster without endpoints', async () => {
    const m = mgr();
    m.setSnapshot(snapshot([[cluster('empty', 'STATIC'), []]]));
    const nc = await m.choose({ cluster: 'nope' });
    assert.ok(!nc.ok && nc.failure.flag === 'NC' && nc.failure.reason === 'cluster_not_found');
    const uh = await m.choose({ cluster: 'empty' });
    assert.ok(!uh.ok && uh.failure.flag === 'UH');
  });

  it('STATIC endpoints written in config are exempt from the SSRF guard; dial binds the source address', async () => {
    const m = mgr({ defaultSourceAddress: '127.0.0.7' });
    m.setSnapshot(snapshot([[cluster('s', 'STATIC'), [{ address: '127.0.0.1', port, weight: 1 }]]]));
    const r = await m.connect({ cluster: 's' });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.failure));
    assert.equal(r.localAddress, '127.0.0.7');
    assert.equal(r.target.poolKey, `s|127.0.0.1:${port}|127.0.0.7`);
    r.socket.destroy();
  });

  it('STRICT_DNS uses every A record, LOGICAL_DNS the first; DNS answers go through the SSRF guard', async () => {
    dns.set('multi.example', () => ({ addresses: ['203.0.113.10', '203.0.113.11'], ttl: 30 }));
    const m = mgr();
    m.setSnapshot(snapshot([
      [cluster('strict', 'STRICT_DNS'), [{ address: 'multi.example', port: 443, weight: 1 }]],
      [cluster('logical', 'LOGICAL_DNS'), [{ address: 'multi.example', port: 443, weight: 1 }]],
    ]));
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await m.choose({ cluster: 'strict' });
      assert.ok(r.ok);
      seen.add(r.target.ip);
      assert.equal(r.target.hostname, 'multi.example');
    }
    assert.deepEqual([...seen].sort(), ['203.0.113.10', '203.0.113.11']);
    for (let i = 0; i < 3; i++) {
      const r = await m.choose({ cluster: 'logical' });
      assert.ok(r.ok && r.target.ip === '203.0.113.10');
    }
  });

  it('DNS failure -> DF dns_resolution_failed', async () => {
    const m = mgr();
    m.setSnapshot(snapshot([[cluster('nx', 'STRICT_DNS'), [{ address: 'missing.example', port: 443, weight: 1 }]]]));
    const r = await m.choose({ cluster: 'nx' });
    assert.ok(!r.ok && r.failure.flag === 'DF' && r.failure.reason === 'dns_resolution_failed');
  });

  it('SSRF: loopback, private, link-local, metadata, CGNAT and IPv6-embedded forms are denied unless allowed', async () => {
    const m = mgr();
    const od = cluster('od', 'ORIGINAL_DST', { serviceHost: '*' });
    m.setSnapshot(snapshot([[od, []]]));
    for (const ip of ['127.0.0.1', '10.0.0.1', '169.254.1.1', '169.254.169.254', '100.64.0.1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '::1', 'fe80::1']) {
      const r = await m.choose({ cluster: 'od', requestedHost: ip });
      assert.ok(!r.ok && r.failure.flag === 'BLOCKED' && r.failure.reason === 'ssrf_denied', ip);
    }
    const pub = await m.choose({ cluster: 'od', requestedHost: '203.0.113.5' });
    assert.ok(pub.ok);
    const allowed = mgr({ allowCidrs: [parseCidr('10.0.0.0/8')!] });
    allowed.setSnapshot(snapshot([[od, []], [cluster('se', 'ORIGINAL_DST', { serviceHost: '*', allowedAddresses: ['192.168.5.0/24'] }), []]]));
    assert.ok((await allowed.choose({ cluster: 'od', requestedHost: '10.9.9.9' })).ok, '--allow-cidr');
    assert.ok((await allowed.choose({ cluster: 'od', requestedHost: '::ffff:10.9.9.9' })).ok, '--allow-cidr covers the embedded form');
    assert.ok((await allowed.choose({ cluster: 'se', requestedHost: '192.168.5.5' })).ok, 'ServiceEntry addresses');
    assert.ok(!(await allowed.choose({ cluster: 'se', requestedHost: '192.168.6.5' })).ok);
  });

  it('ORIGINAL_DST only forwards names its serviceHost covers', async () => {
    dns.set('a.wild.example', () => ({ addresses: ['203.0.113.20'], ttl: 30 }));
    const m = mgr();
    m.setSnapshot(snapshot([[cluster('w', 'ORIGINAL_DST', { serviceHost: '*.wild.example' }), []]]));
    assert.ok((await m.choose({ cluster: 'w', requestedHost: 'a.wild.example' })).ok);
    const bad = await m.choose({ cluster: 'w', requestedHost: 'evil.example' });
    assert.ok(!bad.ok && bad.failure.reason === 'original_dst_host_mismatch');
    const none = await m.choose({ cluster: 'w' });
    assert.ok(!none.ok && none.failure.reason === 'original_dst_no_host');
  });

  it('E7: dials the IP that was checked, even if DNS answers differently afterwards (rebinding)', async () => {
    let n = 0;
    dns.set('rebind.example', () => ({ addresses: [n++ === 0 ? '127.0.0.1' : '10.0.0.1'], ttl: 0 }));
    const m = mgr({ allowCidrs: [parseCidr('127.0.0.0/8')!] });
    m.setSnapshot(snapshot([[cluster('rb', 'STRICT_DNS', { port }), [{ address: 'rebind.example', port, weight: 1 }]]]));
    const c = await m.choose({ cluster: 'rb' });
    assert.ok(c.ok && c.target.ip === '127.0.0.1');
    // a second lookup now answers a private address: the checked target is still what is dialed
    const again = await m.choose({ cluster: 'rb' });
    assert.ok(!again.ok && again.failure.reason === 'ssrf_denied');
    const before = peers.length;
    const d = await m.dial(c.target);
    assert.ok(d.ok);
    d.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(peers.length, before + 1);
  });

  it('E10: never dials one of its own listener ports on a local address', async () => {
    const m = mgr({ allowCidrs: [parseCidr('127.0.0.0/8')!] });
    m.setSnapshot(snapshot([[cluster('od', 'ORIGINAL_DST', { serviceHost: '*', port: 0 }), []]]));
    m.setSelfPorts([port]);
    const r = await m.choose({ cluster: 'od', requestedHost: '127.0.0.1', requestedPort: port });
    assert.ok(!r.ok && r.failure.reason === 'self_connect');
    const z = await m.choose({ cluster: 'od', requestedHost: '0.0.0.0', requestedPort: port });
    assert.ok(!z.ok);
  });

  it('source address: EgressIP per caller, fail closed when not local, never falls back', async () => {
    const m = mgr({ defaultSourceAddress: '127.0.0.8' });
    m.setSnapshot(
      snapshot(
        [
          [cluster('s', 'STATIC'), [{ address: '127.0.0.1', port, weight: 1 }]],
          [cluster('pinned', 'STATIC', { sourceAddress: '192.0.2.10' }), [{ address: '127.0.0.1', port, weight: 1 }]],
        ],
        [{ name: 'eip', sourceAddresses: ['127.0.0.9'], namespaces: ['prod'], callerIps: ['10.1.1.1'], callerNamespaces: { '10.1.1.1': 'prod' }, origin: { kind: 'EgressIP', name: 'eip', namespace: '', file: 'x', line: 1 } }],
      ),
    );
    const e = await m.connect({ cluster: 's', downstreamIp: '10.1.1.1' });
    assert.ok(e.ok && e.localAddress === '127.0.0.9');
    if (e.ok) e.socket.destroy();
    const d = await m.connect({ cluster: 's', downstreamIp: '10.2.2.2' });
    assert.ok(d.ok && d.localAddress === '127.0.0.8');
    if (d.ok) d.socket.destroy();
    const before = peers.length;
    const f = await m.connect({ cluster: 'pinned' });
    assert.ok(!f.ok && f.failure.flag === 'UF' && f.failure.reason === 'source_address_unavailable');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(peers.length, before, 'no connection was made');
    assert.equal(m.callerNamespace('10.1.1.1'), 'prod');
  });

  it('connection refused -> UF upstream_connect_refused; active counts go back to zero', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const m = mgr();
    m.setSnapshot(snapshot([[cluster('dead', 'STATIC'), [{ address: '127.0.0.1', port: deadPort, weight: 1 }]], [cluster('s', 'STATIC'), [{ address: '127.0.0.1', port, weight: 1 }]]]));
    const r = await m.connect({ cluster: 'dead' });
    assert.ok(!r.ok && r.failure.reason === 'upstream_connect_refused' && r.failure.retryable);
    const ok = await m.connect({ cluster: 's' });
    assert.ok(ok.ok);
    assert.equal(m.describe().find((c) => c.name === 's')?.active[`127.0.0.1:${port}`], 1);
    ok.socket.destroy();
    await new Promise((r2) => setTimeout(r2, 30));
    assert.equal(m.describe().find((c) => c.name === 's')?.active[`127.0.0.1:${port}`], undefined);
  });
});
