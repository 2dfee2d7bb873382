import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatJson } from '../observe/access-log.js';
import type { RequestHead } from './head.js';
import { StreamInfo, type DownstreamFacts } from './stream-info.js';

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    kind: 'request',
    method: 'GET',
    target: '/1k',
    targetForm: 'origin',
    scheme: undefined,
    authority: 'up.example',
    path: '/1k',
    host: 'up.example',
    authorityMismatch: false,
    expectContinue: false,
    version: '1.1',
    headers: ['host', 'up.example'],
    contentLength: -1,
    chunked: false,
    ...over,
  } as RequestHead;
}

function info(h: RequestHead, set: (i: StreamInfo) => void): StreamInfo {
  const i = new StreamInfo(h, Date.UTC(2026, 11, 2, 4, 5, 6, 7), 0);
  set(i);
  return i;
}

const plain: DownstreamFacts = { remoteText: '127.0.0.1:40000', localText: '127.0.0.1:8080', sni: null, peerCertificate: undefined };
const mtls: DownstreamFacts = {
  remoteText: '[::1]:40001',
  localText: '[::1]:8443',
  sni: 'api.example',
  peerCertificate: { subject: 'CN=client,O="acme, inc"', uriSans: ['spiffe://td/ns/a/sa/b'], dnsSans: ['a.example', 'b.example'], ipSans: [], sha256: 'ab' },
};

describe('StreamInfo.jsonLine', () => {
  it('is the line formatJson(record()) gives, whatever is set, including cached per-connection pieces', () => {
    const cases: Array<[string, DownstreamFacts, StreamInfo]> = [
      ['forwarded', plain, info(head(), (i) => Object.assign(i, { responseCode: 200, bytesSent: 1278, upstreamHost: '127.0.0.1:9000', upstreamCluster: 'outbound|80||up.example', upstreamLocal: '127.0.0.1:50000', upstreamServiceTime: 0.7, routeName: 'r1', requestId: 'id-1', userAgent: 'curl/8' }))],
      // Same connection and upstream socket, another request: the cached pieces are reused.
      ['same connection again', plain, info(head({ path: '/a?q="x"\\y' }), (i) => Object.assign(i, { responseCode: 404, upstreamHost: '127.0.0.1:9000', upstreamCluster: 'outbound|80||up.example', upstreamLocal: '127.0.0.1:50000', routeName: null, userAgent: 'ua \u00e9 "q" \u0001' }))],
      // The same local address later used for another cluster (a new socket reusing the port).
      ['upstream socket reused for another cluster', plain, info(head(), (i) => Object.assign(i, { responseCode: 200, upstreamHost: '127.0.0.1:9001', upstreamCluster: 'outbound|81||other.example', upstreamLocal: '127.0.0.1:50000' }))],
      ['local reply with reason and detail', plain, info(head({ authority: undefined }), (i) => i.fail('NR', 'route_not_found', 'no route for "x"'))],
      ['upstream failure', mtls, info(head(), (i) => Object.assign(i, { responseCode: 503, flags: 'UF,URX', transportFailure: 'connection refused', upstreamHost: '10.0.0.1:443', upstreamCluster: 'c', upstreamLocal: null }))],
      ['gRPC over mTLS', mtls, info(head({ headers: ['content-type', 'application/grpc'] }), (i) => Object.assign(i, { responseCode: 200, grpcStatus: '14', grpcMessage: 'unavailable \u00e9' }))],
      // The pieces kept from the request before (opening, protocol with code and flags, route) change.
      ['another millisecond, HTTP/2, forwarded-for', plain, Object.assign(new StreamInfo(head(), Date.UTC(2026, 11, 2, 4, 5, 7, 999), 0), { protocol: 'HTTP/2', responseCode: 200, routeName: 'r2', xffIn: '10.0.0.1, 10.0.0.2', upstreamServiceTime: 3.2 })],
      ['the first request again', plain, info(head(), (i) => Object.assign(i, { responseCode: 200, bytesSent: 1278, upstreamHost: '127.0.0.1:9000', upstreamCluster: 'outbound|80||up.example', upstreamLocal: '127.0.0.1:50000', upstreamServiceTime: 0.7, routeName: 'r1', requestId: 'id-1', userAgent: 'curl/8' }))],
    ];
    for (const [name, d, i] of cases) {
      for (const duration of [0.4, 12.9]) {
        const line = i.jsonLine(d, duration);
        assert.equal(line, formatJson(i.record(d, duration)), name);
        assert.doesNotThrow(() => JSON.parse(line), name);
      }
    }
  });
});
