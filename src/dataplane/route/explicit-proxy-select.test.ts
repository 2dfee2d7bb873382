import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, Snapshot } from '../../snapshot/types.js';
import { CompiledSnapshot } from './compile.js';
import { aclAllowsAddress, aclCluster, aclDecide, selectExplicitProxyHttpTarget, selectExplicitProxyTarget } from './select.js';

const c = (name: string, serviceHost: string, port: number): Cluster => ({ name, type: 'STRICT_DNS', serviceHost, port, protocol: 'TLS', connectTimeoutMs: 1, lbPolicy: 'ROUND_ROBIN', explicitAddresses: false });
const snap = new CompiledSnapshot({
  version: 'v',
  proxy: { role: 'gateway', namespace: 'n', name: '', labels: {} },
  listeners: [],
  routes: [],
  clusters: [c('outbound|443||edition.cnn.com', 'edition.cnn.com', 443), c('outbound|443|v1|edition.cnn.com', 'edition.cnn.com', 443), c('outbound|443||*.kmcert.com', '*.kmcert.com', 443), c('outbound|80||edition.cnn.com', 'edition.cnn.com', 80)],
  endpoints: [],
  policy: { outboundTrafficPolicy: 'REGISTRY_ONLY', egressIps: [] },
} satisfies Snapshot);

describe('explicit proxy decisions (pure)', () => {
  it('registry mode: host:port must be declared and the port allowed for CONNECT', () => {
    const ok = selectExplicitProxyTarget(snap, [443], 'edition.cnn.com', 443);
    assert.ok(ok.allowed && ok.cluster?.name === 'outbound|443||edition.cnn.com', 'the subset-less cluster');
    const wild = selectExplicitProxyTarget(snap, [443], 'x.kmcert.com', 443);
    assert.ok(wild.allowed && wild.cluster?.serviceHost === '*.kmcert.com');
    const apex = selectExplicitProxyTarget(snap, [443], 'kmcert.com', 443);
    assert.ok(!apex.allowed && apex.reason === 'connect_not_in_registry', '*.kmcert.com does not cover kmcert.com');
    const port = selectExplicitProxyTarget(snap, [443], 'edition.cnn.com', 80);
    assert.ok(!port.allowed && port.reason === 'connect_port_not_allowed');
    const other = selectExplicitProxyTarget(snap, [443, 8443], 'edition.cnn.com', 8443);
    assert.ok(!other.allowed && other.reason === 'connect_not_in_registry');
  });

  it('ACL: first match wins; names match names, IP/CIDR entries match the (resolved) address', () => {
    const acl = [
      { deny: true, pattern: 'bad.example.com' },
      { deny: false, pattern: '*.example.com' },
      { deny: true, pattern: '10.0.0.0/8' },
      { deny: false, pattern: '203.0.113.5' },
      { deny: false, pattern: '2001:db8::/32' },
    ];
    assert.equal(aclDecide(acl, 'bad.example.com', '203.0.113.1')?.deny, true);
    assert.equal(aclDecide(acl, 'good.example.com', '10.1.1.1')?.deny, false, 'the name entry comes first');
    assert.equal(aclDecide(acl, 'other.org', '10.1.1.1')?.deny, true, 'resolved address in a denied CIDR');
    assert.equal(aclDecide(acl, 'other.org', '203.0.113.5')?.pattern, '203.0.113.5');
    assert.equal(aclDecide(acl, '203.0.113.5', undefined)?.pattern, '203.0.113.5', 'an IP literal host');
    assert.equal(aclDecide(acl, 'other.org', '203.0.113.6'), undefined, 'no match: denied');
    assert.equal(aclDecide(acl, 'x.org', '2001:db8::5')?.pattern, '2001:db8::/32');
    assert.equal(aclDecide([{ deny: false, pattern: '*' }], 'anything.io', undefined)?.pattern, '*');
    assert.equal(aclAllowsAddress(acl, '203.0.113.5'), true);
    assert.equal(aclAllowsAddress(acl, '10.1.1.1'), false, 'deny entries never exempt an address');
  });

  it('absolute-form (registry mode): host:port declared, no CONNECT-port rule, no clear text where TLS is declared', () => {
    // the fixture's port-80 cluster says TLS: plain HTTP to it is refused without origination
    const tlsPort = selectExplicitProxyHttpTarget(snap, 'http', 'edition.cnn.com', 80);
    assert.ok(!tlsPort.allowed && tlsPort.reason === 'proxy_tls_not_originated' && tlsPort.flag === 'BLOCKED');
    const httpSnap = new CompiledSnapshot({ ...snap.snapshot, clusters: [{ ...c('outbound|8080||api.example', 'api.example', 8080), protocol: 'HTTP' }, { ...c('outbound|443||o.example', 'o.example', 443), tls: { mode: 'SIMPLE' } }] });
    const ok = selectExplicitProxyHttpTarget(httpSnap, 'http', 'api.example', 8080);
    assert.ok(ok.allowed && ok.cluster?.name === 'outbound|8080||api.example');
    const undeclared = selectExplicitProxyHttpTarget(httpSnap, 'http', 'api.example', 80);
    assert.ok(!undeclared.allowed && undeclared.reason === 'proxy_not_in_registry' && undeclared.flag === 'NR');
    const https = selectExplicitProxyHttpTarget(httpSnap, 'https', 'api.example', 8080);
    assert.ok(!https.allowed && https.reason === 'proxy_tls_not_originated');
    const originated = selectExplicitProxyHttpTarget(httpSnap, 'https', 'o.example', 443);
    assert.ok(originated.allowed, 'TLS origination on the cluster makes https:// and TLS ports usable');
  });

  it('aclCluster: ORIGINAL_DST to the checked address, one name per host:port, the router source', () => {
    const k = aclCluster('www.example.com', 80, '10.0.0.5');
    assert.equal(k.name, 'explicit_proxy|80||www.example.com');
    assert.equal(k.type, 'ORIGINAL_DST');
    assert.equal(k.sourceAddress, '10.0.0.5');
    assert.equal(k.explicitAddresses, false);
  });
});
