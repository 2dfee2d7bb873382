import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EgressIpIndex, LocalAddresses, SourceAddressPolicy } from './source-address.js';
import type { Cluster, EgressIpRule } from '../../snapshot/types.js';

const base: Cluster = { name: 'outbound|443||x', type: 'STATIC', serviceHost: 'x', port: 443, protocol: 'TLS', connectTimeoutMs: 1000, lbPolicy: 'ROUND_ROBIN', explicitAddresses: true };
const rule: EgressIpRule = {
  name: 'egressip-prod',
  sourceAddresses: ['192.0.2.50', '127.0.0.9'],
  namespaces: ['prod'],
  callerIps: ['10.1.1.1'],
  callerNamespaces: { '10.1.1.1': 'prod' },
  origin: { kind: 'EgressIP', name: 'egressip-prod', namespace: '', file: 'f', line: 1 },
};
const local = (ip: string): boolean => ip.startsWith('127.') || ip === '198.51.100.7';

describe('source address precedence (docs/source-address.md)', () => {
  const policy = new SourceAddressPolicy('198.51.100.7', local);
  const egress = new EgressIpIndex([rule]);

  it('1. cluster.sourceAddress wins over everything', () => {
    const c = policy.choose({ cluster: { ...base, sourceAddress: '127.0.0.3' }, filterSourceAddress: '127.0.0.4', downstreamIp: '10.1.1.1' }, egress);
    assert.equal(c.address, '127.0.0.3');
    assert.equal(c.unavailable, undefined);
  });
  it('2. the filter source (http-proxy EGRESS_SOURCE) comes next', () => {
    assert.equal(policy.choose({ cluster: base, filterSourceAddress: '127.0.0.4', downstreamIp: '10.1.1.1' }, egress).address, '127.0.0.4');
  });
  it('3. the caller namespace EgressIP: the first local address of the rule', () => {
    const c = policy.choose({ cluster: base, downstreamIp: '10.1.1.1' }, egress);
    assert.equal(c.address, '127.0.0.9');
    assert.equal(c.why, 'egressip:egressip-prod');
    assert.equal(egress.namespaceOf('::ffff:10.1.1.1'), 'prod', 'IPv4-mapped callers are recognised');
  });
  it('4. --source-address for everyone else, 5. OS default without it', () => {
    assert.equal(policy.choose({ cluster: base, downstreamIp: '10.9.9.9' }, egress).address, '198.51.100.7');
    const none = new SourceAddressPolicy(undefined, local).choose({ cluster: base }, egress);
    assert.equal(none.address, undefined);
    assert.equal(none.why, 'os-default');
  });
  it('fails closed, never falls back, when the chosen address is not local', () => {
    const c = policy.choose({ cluster: { ...base, sourceAddress: '192.0.2.10' }, downstreamIp: '10.9.9.9' }, egress);
    assert.equal(c.address, '192.0.2.10');
    assert.match(c.unavailable ?? '', /192\.0\.2\.10 .* not assigned/);
    const e = new SourceAddressPolicy(undefined, local).choose({ cluster: base, downstreamIp: '10.1.1.1' }, new EgressIpIndex([{ ...rule, sourceAddresses: ['192.0.2.50'] }]));
    assert.ok(e.unavailable);
    const d = new SourceAddressPolicy('192.0.2.99', local).choose({ cluster: base }, egress);
    assert.ok(d.unavailable);
  });
  it('LocalAddresses: 127/8 is local, TEST-NET is not, interface addresses are', () => {
    const la = new LocalAddresses(0);
    assert.equal(la.isLocal('127.45.6.7'), true);
    assert.equal(la.isLocal('::1'), true);
    assert.equal(la.isLocal('192.0.2.10'), false);
    assert.equal(la.isLocal('not an ip'), false);
  });
});
