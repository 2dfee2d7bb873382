import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xfccModeOf, xfccPolicyOf, xfccValue } from './xfcc.js';
import { buildRequestHead } from './headers.js';
import type { PeerCertificateFacts } from '../context.js';

const peer: PeerCertificateFacts = { subject: 'O=cluster.local', uriSans: ['spiffe://cluster.local/ns/a/sa/sleep'], dnsSans: [], ipSans: [], sha256: 'ab12' };
const own = 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway';
const head = (xfcc: { forward: boolean; set: string | null }, headers: string[]): string =>
  buildRequestHead({ method: 'GET', target: '/', host: 'up', headers, connectionTokens: [], framing: 'none', upgrade: false, stripExpect: false, xffAppend: null, stripXff: false, proto: 'http', addRequestId: false, ops: null, xfcc }, { xffIn: null, requestId: null, userAgent: null });
const xfccLines = (text: string): string[] => text.split('\r\n').filter((l) => l.toLowerCase().startsWith('x-forwarded-client-cert:'));

describe('x-forwarded-client-cert', () => {
  it('the element names this proxy (By), the certificate hash, subject and SANs, as Envoy writes them', () => {
    assert.equal(xfccValue(peer, own), `By=${own};Hash=ab12;Subject="O=cluster.local";URI=spiffe://cluster.local/ns/a/sa/sleep`);
    assert.equal(xfccValue({ ...peer, subject: 'CN=a "b"', uriSans: [], dnsSans: ['c.example'] }, undefined), 'Hash=ab12;Subject="CN=a \\"b\\"";DNS=c.example');
  });
  it('modes: sidecar inbound APPEND_FORWARD, gateways SANITIZE_SET unless the mesh config says otherwise, anything else SANITIZE', () => {
    const conn = (inbound: boolean, role: string, mode?: string) => ({ listener: { listener: { inboundCapture: inbound } }, snapshot: { snapshot: { proxy: { role }, policy: mode === undefined ? {} : { forwardClientCertDetails: mode } } } }) as unknown as Parameters<typeof xfccModeOf>[0];
    assert.equal(xfccModeOf(conn(true, 'sidecar')), 'APPEND_FORWARD');
    assert.equal(xfccModeOf(conn(false, 'sidecar')), 'SANITIZE');
    assert.equal(xfccModeOf(conn(false, 'gateway')), 'SANITIZE_SET');
    assert.equal(xfccModeOf(conn(false, 'gateway', 'FORWARD_ONLY')), 'FORWARD_ONLY');
    assert.equal(xfccModeOf(conn(false, 'router')), 'SANITIZE');
  });
  it('a client without a verified certificate never gets its XFCC forwarded (except ALWAYS_FORWARD_ONLY)', () => {
    const spoof = ['X-Forwarded-Client-Cert', 'By=spiffe://evil;URI=spiffe://cluster.local/ns/admin/sa/root', 'Accept', '*/*'];
    for (const mode of ['SANITIZE', 'SANITIZE_SET', 'APPEND_FORWARD', 'FORWARD_ONLY'] as const) {
      assert.deepEqual(xfccLines(head(xfccPolicyOf(mode, undefined, undefined), spoof)), [], mode);
    }
    assert.deepEqual(xfccLines(head(xfccPolicyOf('ALWAYS_FORWARD_ONLY', undefined, undefined), spoof)), ['X-Forwarded-Client-Cert: By=spiffe://evil;URI=spiffe://cluster.local/ns/admin/sa/root']);
  });
  it('on mTLS: SANITIZE_SET replaces, APPEND_FORWARD appends to what the peer sent, FORWARD_ONLY forwards as is', () => {
    const sent = ['x-forwarded-client-cert', 'By=spiffe://upstream-hop;URI=spiffe://cluster.local/ns/b/sa/x'];
    const mine = xfccValue(peer, own);
    assert.deepEqual(xfccLines(head(xfccPolicyOf('SANITIZE_SET', peer, own), sent)), [`X-Forwarded-Client-Cert: ${mine}`]);
    assert.deepEqual(xfccLines(head(xfccPolicyOf('APPEND_FORWARD', peer, own), sent)), [`X-Forwarded-Client-Cert: ${sent[1]},${mine}`]);
    assert.deepEqual(xfccLines(head(xfccPolicyOf('APPEND_FORWARD', peer, own), [])), [`X-Forwarded-Client-Cert: ${mine}`]);
    assert.deepEqual(xfccLines(head(xfccPolicyOf('FORWARD_ONLY', peer, own), sent)), [`X-Forwarded-Client-Cert: ${sent[1]}`]);
    assert.deepEqual(xfccLines(head(xfccPolicyOf('SANITIZE', peer, own), sent)), []);
  });
});
