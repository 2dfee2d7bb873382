/**
 * Source address pools on real sockets: a ServiceEntry's `tollgate.io/source-address-pool` with
 * OpenShift SDN HostSubnets placing its addresses on two nodes. A replica started on each node
 * leaves from its own node's address (the destination reports the peer it saw); a replica that
 * does not know its node may use none of the placed addresses and fails closed (nothing reaches
 * the destination).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { freeTcpPort } from '../helpers/dns.js';
import { loopbackAddress, startEchoServer, type EchoServer } from '../helpers/net.js';
import { startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

function poolYaml(destIp: string, destPort: number, a: string, b: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: partner
  namespace: default
  annotations:
    tollgate.io/source-address-pool: "${a}, ${b}"
spec:
  hosts: [partner.example]
  ports: [{ number: ${destPort}, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: ${destIp} }]
---
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata: { name: node-a }
host: node-a
egressIPs: ["${a}"]
---
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata: { name: node-b }
host: node-b
egressIPs: ["${b}"]
`;
}

/** CONNECT through the proxy; resolves with the status line and the first line the destination sent. */
function connectThrough(proxyPort: number, target: string): Promise<{ status: string; greeting: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: proxyPort });
    let text = '';
    const done = (): void => {
      s.destroy();
      const [head = '', rest = ''] = text.split('\r\n\r\n');
      resolve({ status: head.split('\r\n')[0] ?? '', greeting: rest.split('\n')[0] ?? '' });
    };
    const timer = setTimeout(done, 3000);
    s.on('connect', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/\r\n\r\n[^\n]*\n/.test(text) || (text.includes('\r\n\r\n') && !text.startsWith('HTTP/1.1 200'))) {
        clearTimeout(timer);
        done();
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      done();
    });
  });
}

describe('source address pool placed by HostSubnets', { concurrency: false }, () => {
  let dest: EchoServer;
  let cfg: { path: string; cleanup(): void };
  const addrA = loopbackAddress();
  const addrB = loopbackAddress();
  const gates: TestGate[] = [];

  before(async () => {
    dest = await startEchoServer(loopbackAddress());
    cfg = tempConfig(poolYaml(dest.host, dest.port, addrA, addrB));
  });

  after(async () => {
    for (const g of gates) await g.stop();
    await dest?.close();
    cfg?.cleanup();
  });

  const replica = async (node: string | undefined): Promise<number> => {
    const port = await freeTcpPort();
    gates.push(await startGate(['-f', cfg.path, '--explicit-proxy', `127.0.0.1:${port}`, '--connect-ports', String(dest.port), ...(node ? ['--node', node] : [])]));
    return port;
  };

  it('the replica on node-a leaves from node-a\'s address, the one on node-b from node-b\'s', async () => {
    const pa = await replica('node-a');
    const pb = await replica('node-b');
    for (let i = 0; i < 3; i++) {
      const ra = await connectThrough(pa, `partner.example:${dest.port}`);
      assert.match(ra.status, /^HTTP\/1\.1 200 /);
      assert.equal(ra.greeting, `peer=${addrA}`);
      const rb = await connectThrough(pb, `partner.example:${dest.port}`);
      assert.equal(rb.greeting, `peer=${addrB}`);
    }
    assert.deepEqual([...new Set(dest.peers.map((p) => p.slice(0, p.lastIndexOf(':'))))].sort(), [addrA, addrB].sort());
  });

  it('a replica that does not know its node uses no placed address: fails closed, nothing sent', async () => {
    const before = dest.peers.length;
    const p = await replica(undefined);
    const r = await connectThrough(p, `partner.example:${dest.port}`);
    assert.match(r.status, /^HTTP\/1\.1 503/);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(dest.peers.length, before);
  });
});
