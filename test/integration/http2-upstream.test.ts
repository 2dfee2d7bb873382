/**
 * Upstream HTTP/2 and translation both ways, through `tollgate run` as an edge gateway:
 * - HTTP/1.1 curl -> a node:http2 (h2c) upstream declared `protocol: HTTP2`, and an HTTP port
 *   upgraded by a DestinationRule `h2UpgradePolicy: UPGRADE`; trailers reach an HTTP/1.1 client
 *   that asked for them (`TE: trailers`) and an h2 client;
 * - `curl --http2-prior-knowledge` -> an HTTP/1.1 nginx upstream;
 * - pooling by streams (`maxRequestsPerConnection`), and GOAWAY from the upstream under load as a
 *   graceful drain: no request lost.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { freeTcpPort } from '../helpers/dns.js';
import { startNginx, type Nginx } from '../helpers/http.js';
import { virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, listen } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('nginx');
const skip = ready ? false : 'needs curl and nginx';
if (!ready && isCI) throw new Error(`http2-upstream: ${skip}; CI=true`);

interface H2Upstream {
  readonly host: string;
  readonly port: number;
  /** One entry per request: protocol version, :authority, path, fields. */
  readonly seen: { version: string; authority: string | undefined; path: string; headers: http2.IncomingHttpHeaders; body: string }[];
  sessions: number;
  close(): Promise<void>;
}

/**
 * An h2c server: echoes the request as JSON with `x-upstream: h2` and a `x-checksum` trailer.
 * `goawayEvery`: after that many streams on a session, it sends GOAWAY (the streams it accepted finish).
 */
async function startH2Upstream(host: string, goawayEvery = 0): Promise<H2Upstream> {
  const server = http2.createServer();
  const up: H2Upstream = { host, port: 0, seen: [], sessions: 0, close: () => new Promise((r) => server.close(() => r())) };
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    up.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    let n = 0;
    s.on('stream', () => {
      n++;
      if (goawayEvery > 0 && n === goawayEvery) setImmediate(() => s.close()); // GOAWAY, in-flight streams finish
    });
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      up.seen.push({ version: '2.0', authority: headers[':authority'], path: headers[':path'] ?? '', headers, body });
      const out = JSON.stringify({ path: headers[':path'], authority: headers[':authority'], te: headers['te'] ?? null, body: body.length });
      // A few ms of work, so requests overlap on the connection.
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': 'h2' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(out.length) }));
        stream.end(out);
      }, 2);
    });
  });
  (up as { port: number }).port = await listen(server as unknown as import('node:net').Server, host);
  const close = up.close;
  up.close = async () => {
    for (const s of sessions) s.destroy();
    await close();
  };
  return up;
}

function entry(name: string, host: string, protocol: string, address: string, targetPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: edge}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: ${protocol.toLowerCase()}-web, protocol: ${protocol}, targetPort: ${targetPort}}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: ${address}}]
---
`;
}

function config(h2: H2Upstream, goaway: H2Upstream, upgraded: H2Upstream, nginxPort: number): string {
  return (
    entry('h2', 'h2.test', 'HTTP2', h2.host, h2.port) +
    entry('goaway', 'goaway.test', 'GRPC', goaway.host, goaway.port) +
    entry('upgraded', 'upgraded.test', 'HTTP', upgraded.host, upgraded.port) +
    entry('nginx', 'nginx.test', 'HTTP', '127.0.0.1', nginxPort) +
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: upgraded, namespace: edge}
spec:
  host: upgraded.test
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: h2, namespace: edge}
spec:
  host: h2.test
  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 5}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*.test']}]
---
` +
    virtualService('all', 'edge', ['h2.test', 'goaway.test', 'upgraded.test', 'nginx.test'], ['gw'], `http:
- match: [{authority: {exact: h2.test}}]
  route: [{destination: {host: h2.test}}]
- match: [{authority: {exact: goaway.test}}]
  route: [{destination: {host: goaway.test}}]
- match: [{authority: {exact: upgraded.test}}]
  route: [{destination: {host: upgraded.test}}]
- route: [{destination: {host: nginx.test}}]`)
  );
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: string;
}

function h2request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers, { endStream: body === undefined });
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let text = '';
    req.on('response', (h) => (got = h));
    req.on('trailers', (t) => (trailers = t));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => resolve({ status: Number(got[':status']), headers: got, trailers, body: text }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

describe('HTTP/2 upstream and HTTP/1.1 <-> HTTP/2 translation', { skip, concurrency: false }, () => {
  let h2: H2Upstream;
  let goaway: H2Upstream;
  let upgraded: H2Upstream;
  let nginx: Nginx;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    const host = loopbackAddress();
    h2 = await startH2Upstream(host);
    goaway = await startH2Upstream(host, 40);
    upgraded = await startH2Upstream(host);
    const nginxPort = await freeTcpPort();
    nginx = await startNginx(() => `server {\n  listen 127.0.0.1:${nginxPort};\n  location / { add_header x-upstream nginx; return 200 "nginx $server_protocol $http_host $request_uri\\n"; }\n}\n`, '127.0.0.1', nginxPort);
    cfg = tempConfig(config(h2, goaway, upgraded, nginxPort));
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 }) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await h2?.close();
    await goaway?.close();
    await upgraded?.close();
    await nginx?.stop();
    cfg?.cleanup();
  });

  it('HTTP/1.1 curl -> HTTP2 port: the upstream gets HTTP/2 with :authority and :path; the body comes back framed', async () => {
    const r = await run('curl', ['-sS', '--http1.1', '--max-time', '5', '-H', 'Host: h2.test', '-D', '-', `http://127.0.0.1:${port}/one?x=1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.stdout, /\r\nx-upstream: h2\r\n/i);
    const seen = h2.seen.find((s) => s.path === '/one?x=1');
    assert.ok(seen, 'the h2 upstream saw the request');
    assert.equal(seen.authority, 'h2.test');
    assert.equal(seen.headers['host'], undefined, 'Host became :authority');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    const rec = await gate.waitForLog((x) => x.path === '/one?x=1');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.protocol, 'HTTP/1.1');
    assert.equal(rec.upstream_cluster, 'outbound|80||h2.test');
  });

  it('a chunked HTTP/1.1 request body reaches the HTTP/2 upstream whole', async () => {
    const body = 'y'.repeat(200_000);
    const r = await run('curl', ['-sS', '--http1.1', '--max-time', '10', '-H', 'Host: h2.test', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `http://127.0.0.1:${port}/post`], { input: body });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { body: number }).body, body.length);
  });

  it('trailers: to an HTTP/1.1 client that sent TE: trailers (chunked, in the last chunk), and to an h2 client', async () => {
    const r = await run('curl', ['-sS', '--http1.1', '--raw', '--max-time', '5', '-H', 'Host: h2.test', '-H', 'TE: trailers', '-i', `http://127.0.0.1:${port}/trailers`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\r\ntransfer-encoding: chunked\r\n/i);
    assert.match(r.stdout, /\r\n0\r\nx-checksum: \d+\r\n\r\n$/);
    const seen = h2.seen.find((s) => s.path === '/trailers');
    assert.equal(seen?.headers['te'], 'trailers', 'TE: trailers is forwarded to the HTTP/2 upstream');
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const a = await h2request(client, { ':path': '/h2-to-h2', ':authority': 'h2.test', te: 'trailers' });
      assert.equal(a.status, 200);
      assert.equal(a.headers['x-upstream'], 'h2');
      assert.match(String(a.trailers?.['x-checksum']), /^\d+$/);
      assert.equal(JSON.parse(a.body).path, '/h2-to-h2');
    } finally {
      client.close();
    }
  });

  it('h2UpgradePolicy: UPGRADE sends an HTTP port upstream over HTTP/2', async () => {
    const r = await run('curl', ['-sS', '--http1.1', '--max-time', '5', '-H', 'Host: upgraded.test', `http://127.0.0.1:${port}/upgraded`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { authority: string }).authority, 'upgraded.test');
    assert.ok(upgraded.seen.some((s) => s.path === '/upgraded'));
  });

  it('curl --http2-prior-knowledge -> HTTP/1.1 nginx upstream', async () => {
    const r = await run('curl', ['-sS', '--http2-prior-knowledge', '--max-time', '5', '-H', 'Host: nginx.test', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${port}/from-h2?q=2`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'nginx HTTP/1.1 nginx.test /from-h2?q=2\n2 200');
  });

  it('streams share connections; maxRequestsPerConnection opens a new one after 5 requests', async () => {
    const before = h2.sessions;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      for (let i = 0; i < 12; i++) {
        const a = await h2request(client, { ':path': `/seq/${i}`, ':authority': 'h2.test' });
        assert.equal(a.status, 200);
      }
    } finally {
      client.close();
    }
    assert.equal(h2.sessions - before, 3, '12 sequential requests at 5 per connection: 3 upstream connections');
  });

  it('GOAWAY from the upstream under load is a graceful drain: 600 requests, 32 concurrent, none lost', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const total = 600;
    const results: number[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        const a = await h2request(client, { ':method': 'POST', ':path': `/load/${i}`, ':authority': 'goaway.test' }, `body-${i}`);
        results.push(a.status);
      }
    };
    try {
      await Promise.all(Array.from({ length: 32 }, worker));
    } finally {
      client.close();
    }
    assert.equal(results.length, total);
    assert.deepEqual(
      results.filter((s) => s !== 200),
      [],
    );
    // GOAWAY after 40 streams; the streams already sent by then are still accepted, so >= 40 per connection.
    assert.ok(goaway.sessions >= 5, `the upstream drained its connections with GOAWAY: ${goaway.sessions} connections`);
    assert.equal(goaway.seen.filter((s) => s.path.startsWith('/load/')).length, total, 'each request processed exactly once');
  });
});
