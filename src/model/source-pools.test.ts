import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeResources } from '../config/decode.js';
import { parseText } from '../config/load.js';
import { buildSnapshot } from '../snapshot/build.js';
import { buildModel } from './build.js';
import { leaseNameOf, parseAddressPool, usableAddresses } from './source-pools.js';

const SDN = 'test/fixtures/source-address/openshift-sdn.yaml';

function modelOf(text: string, file = 'pool.yaml') {
  const decoded = decodeResources(parseText(text, file).documents);
  assert.deepEqual(decoded.diagnostics.filter((d) => d.severity === 'error'), []);
  return buildModel(decoded.resources);
}

describe('parseAddressPool', () => {
  it('lists and ranges, commas or spaces, IPv4 and IPv6, canonical forms', () => {
    assert.deepEqual(parseAddressPool('192.0.2.10, 192.0.2.12-192.0.2.14 198.51.100.1'), { addresses: ['192.0.2.10', '192.0.2.12', '192.0.2.13', '192.0.2.14', '198.51.100.1'] });
    assert.deepEqual(parseAddressPool('2001:DB8::1-2001:db8::3'), { addresses: ['2001:db8::1', '2001:db8::2', '2001:db8::3'] });
  });
  it('refuses what is not a pool', () => {
    for (const bad of ['', 'example.com', '192.0.2.9-192.0.2.1', '192.0.2.1-2001:db8::1', '192.0.2.1, 192.0.2.1', '10.0.0.0-10.0.255.255', '192.0.2.01']) {
      assert.ok('error' in parseAddressPool(bad), bad);
    }
  });
});

describe('source pools in the model and the snapshot', () => {
  it('a bad pool annotation is an error and leaves the pool empty (fail closed)', () => {
    const m = modelOf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: p
  annotations:
    tollgate.io/source-address-pool: "192.0.2.1-192.0.1.1"
    tollgate.io/source-address-mode: sometimes
spec: { hosts: [p.example], ports: [{ number: 443, name: tls, protocol: TLS }], resolution: DNS }
`);
    const errs = m.diagnostics.filter((d) => d.code === 'TG_SOURCE_POOL_BAD');
    assert.equal(errs.length, 2);
    assert.deepEqual(errs.map((d) => d.pos?.line).sort(), [6, 7]);
    assert.deepEqual(m.sourcePools[0]?.addresses, []);
  });

  it('HostSubnets place the addresses: each node gets its share, an unknown node none', () => {
    const m = modelOf(readFileSync(SDN, 'utf8'), SDN);
    const se = m.sourcePools.find((p) => p.label === 'ServiceEntry herasoo/partner-api');
    assert.ok(se);
    assert.deepEqual(se.addresses, ['192.168.12.100', '192.168.12.101', '192.168.12.120']);
    assert.deepEqual(usableAddresses(se, 'herasoo-dmz-infra-wokernode1'), ['192.168.12.100', '192.168.12.101']);
    assert.deepEqual(usableAddresses(se, 'herasoo-dmz-infra-wokernode2'), []);
    assert.deepEqual(usableAddresses(se, undefined), []);
    const unplaced = { ...se, placement: {} };
    assert.deepEqual(usableAddresses(unplaced, undefined), se.addresses);
  });

  it('NetNamespace egressIPs become a floating caller-namespace rule on both nodes that list the address', () => {
    const m = modelOf(readFileSync(SDN, 'utf8'), SDN);
    for (const node of ['herasoo-dmz-infra-wokernode1', 'herasoo-dmz-infra-wokernode2']) {
      const s = buildSnapshot(m, { role: 'gateway', namespace: 'herasoo', name: '', labels: {}, nodeName: node });
      const rule = s.policy.egressIps.find((r) => r.name === 'NetNamespace herasoo');
      assert.deepEqual(rule?.sourceAddresses, ['192.168.12.99']);
      assert.deepEqual(rule?.callerIps, ['10.128.2.15']);
      assert.deepEqual(s.managedAddresses?.map((a) => [a.address, a.managedBy, a.lease]), [['192.168.12.99', 'floating', leaseNameOf('192.168.12.99')]]);
    }
    const elsewhere = buildSnapshot(m, { role: 'gateway', namespace: 'herasoo', name: '', labels: {}, nodeName: 'other-node' });
    assert.deepEqual(elsewhere.policy.egressIps.find((r) => r.name === 'NetNamespace herasoo')?.sourceAddresses, []);
    assert.equal(elsewhere.managedAddresses, undefined);
  });
});

describe('analyze: the complete set a partner must allow', () => {
  it('lists every pool address, the placement, and the whole set', async () => {
    const { analyzeModel } = await import('../analyze/analyze.js');
    const d = analyzeModel(modelOf(readFileSync(SDN, 'utf8'), SDN));
    const all = d.find((x) => x.code === 'TG_SOURCE_ADDRESSES_ALL');
    assert.match(all?.message ?? '', /192\.168\.12\.99, 192\.168\.12\.100, 192\.168\.12\.101, 192\.168\.12\.120$/);
    const nn = d.find((x) => x.code === 'TG_SOURCE_ADDRESS_SET' && x.message.startsWith('NetNamespace herasoo'));
    assert.match(nn?.message ?? '', /192\.168\.12\.99 on herasoo-dmz-infra-wokernode1 or herasoo-dmz-infra-wokernode2/);
    assert.ok(d.some((x) => x.code === 'TG_SOURCE_ADDRESS_UNPLACED' && x.message.startsWith('192.168.12.120')));
  });
});
