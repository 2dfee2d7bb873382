/**
 * Differential test: every (config, request) pair goes through `trace` (runTrace: what the CLI
 * runs, in process) and through a live proxy on loopback (raw bytes over a socket); the decision
 * — status, response flag, reason, cluster, upstream host and source address — must agree field
 * for field with the access-log record. One proxy per config, requests sent one after another.
 *
 * The table covers path normalisation (the four levels, 60 path spellings each, with nginx behind:
 * a deny on /admin must never reach nginx's /admin under MERGE_SLASHES or DECODE_AND_MERGE_SLASHES),
 * encoded slashes, request validation, absolute-form authority, Host case/trailing dot/port,
 * repeated headers, fault aborts, redirect Location, weight-0 and missing destinations, the SSRF
 * guard and DNS outcomes, a missing source address, passthrough port steering, HTTP inside TLS
 * terminated by a Gateway server (tls SIMPLE): SNI selects the chain, Host routes the request, and
 * AuthorizationPolicy (allow, deny, dry-run) on routed, explicit-proxy and CONNECT requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { runTrace } from '../../src/cli/trace.js';
import { parseCidr, type Cidr } from '../../src/net/ip.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import type { TraceRequest } from '../../src/trace/trace.js';
import type { AccessLogRecord } from '../../src/dataplane/observe/access-log.js';
import { startFakeDns, type FakeDns } from '../helpers/dns.js';
import { startNginx, type Nginx } from '../helpers/http.js';
import { addressEntry, httpProxyRouter } from '../helpers/istio-yaml.js';
import { listen, loopbackAddress, tcpExchange, waitFor } from '../helpers/net.js';
import { identity, loadYaml } from '../helpers/pipeline.js';
import { FIXTURES, startGateWithConfig } from '../helpers/tollgate.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeTcpPort } from '../helpers/dns.js';
import { haveTool, isCI, isRoot } from '../helpers/tools.js';
import { makePki } from '../helpers/pki.js';
import type { ProxyIdentity } from '../../src/snapshot/types.js';

const ready = haveTool('nginx') && isRoot;
const skip = ready ? false : 'needs nginx and root (the passthrough upstream binds port 80 on a loopback address)';
if (!ready && isCI) throw new Error(`differential: ${skip}; CI=true`);

interface Case {
  readonly method?: string;
  readonly target: string;
  /** Header lines; Host first when given. */
  readonly headers: readonly (readonly [string, string])[];
  readonly label: string;
  /** Sent to an explicit proxy: `target` is an absolute URL or, for CONNECT, host:port. */
  readonly viaProxy?: boolean;
  /** A TLS connection instead of an HTTP request: the ClientHello carries this SNI (none when null). */
  readonly tlsSni?: string | null;
  /** The HTTP request inside TLS the proxy terminates: the ClientHello carries this SNI (none when null). */
  readonly https?: string | null;
  /** What the live proxy must log, whatever trace says (the security properties themselves). */
  readonly expect?: Partial<Fields>;
}

interface Fields {
  status: number;
  flag: string;
  reason: string | null;
  cluster: string | null;
  upstreamHost: string | null;
  sourceAddress: string | null;
}

/** The access-log fields, with the source address reduced to its IP (the port is the kernel's). */
function fromLog(r: AccessLogRecord): Fields {
  const local = r.upstream_local_address;
  const ip = local === null ? null : local.startsWith('[') ? local.slice(1, local.indexOf(']')) : local.includes(':') && !local.includes('::') ? local.slice(0, local.lastIndexOf(':')) : local;
  return { status: r.response_code, flag: r.response_flags, reason: r.tollgate_reason ?? null, cluster: r.upstream_cluster, upstreamHost: r.upstream_host, sourceAddress: ip };
}

function rawRequest(c: Case): string {
  let s = `${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\n`;
  for (const [n, v] of c.headers) s += `${n}: ${v}\r\n`;
  return s + 'Connection: close\r\n\r\n';
}

interface Setup {
  readonly yaml: string;
  readonly id: ProxyIdentity;
  readonly args: readonly string[];
  readonly allowCidrs: readonly string[];
  readonly sourceAddress?: string;
  readonly listenerPort: number;
  readonly cases: readonly Case[];
  /** Bodies that must never come back (a bypassed deny). */
  readonly forbiddenBody?: string;
  /** The CA (PEM) the proxy's server certificate chains to (cases with `https`). */
  readonly ca?: string;
}

interface Outcome {
  readonly total: number;
  readonly mismatches: string[];
  readonly bypasses: string[];
}

async function runConfig(s: Setup, dns: FakeDns): Promise<Outcome> {
  const compiled = loadYaml(s.yaml);
  const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], 'the config is valid');
  const snapshot = buildSnapshot(compiled.model, s.id);
  const cidrs: Cidr[] = s.allowCidrs.map((c) => parseCidr(c)!);
  const flagArgs = [...s.allowCidrs.flatMap((c) => ['--allow-cidr', c]), ...(s.sourceAddress !== undefined ? ['--source-address', s.sourceAddress] : [])];
  const { gate, cfg } = await startGateWithConfig(s.yaml, [...s.args, '--dns-server', dns.server, ...flagArgs]);
  const mismatches: string[] = [];
  const bypasses: string[] = [];
  try {
    const port = gate.port(s.listenerPort);
    for (const c of s.cases) {
      const hostLine = c.headers.find(([n]) => n.toLowerCase() === 'host');
      const abs = c.viaProxy === true ? /^(https?):\/\/([^/]*)(.*)$/.exec(c.target) : null;
      const proxied: Partial<TraceRequest> = c.viaProxy !== true ? {} : abs ? { proxyPort: s.listenerPort, scheme: abs[1] === 'https' ? 'tls' : 'http', authority: abs[2] ?? '', target: abs[3] || '/' } : { proxyPort: s.listenerPort, authority: c.target };
      const req: TraceRequest = {
        scheme: 'http',
        host: 'unused',
        port: s.listenerPort,
        path: '/',
        query: '',
        method: c.method ?? 'GET',
        headers: {},
        headerLines: [...c.headers, ['Connection', 'close']],
        authority: hostLine?.[1] ?? '',
        target: c.target,
        sourceIp: '127.0.0.1',
        ...proxied,
      };
      if (c.tlsSni !== undefined) Object.assign(req, { scheme: 'tls', host: c.tlsSni ?? '127.0.0.1', ...(c.tlsSni !== null ? { sni: c.tlsSni } : {}) });
      if (c.https !== undefined) Object.assign(req, { scheme: 'tls', host: c.https ?? '127.0.0.1', ...(c.https !== null ? { sni: c.https } : {}) });
      const traced = await runTrace(compiled.model, snapshot, req, { allowCidrs: cidrs, dnsServers: [dns.server], checkSourceAddresses: true, ...(s.sourceAddress !== undefined ? { sourceAddress: s.sourceAddress } : {}) });
      const d = traced.decision;
      const before = gate.logs.length;
      const res = c.tlsSni !== undefined ? await tlsHello(port, c.tlsSni) : c.https !== undefined ? await tlsExchange(port, c.https, rawRequest(c), s.ca) : await tcpExchange('127.0.0.1', port, rawRequest(c), { timeoutMs: 8000 });
      const rec = await waitFor(() => gate.logs[before], 4000, `access log for ${c.label}`);
      const live = fromLog(rec);
      if (s.forbiddenBody !== undefined && res.data.includes(s.forbiddenBody)) bypasses.push(`${c.label}: ${JSON.stringify(c.target)} reached the upstream's /admin`);
      if (d === undefined) {
        mismatches.push(`${c.label}: trace gave no decision (${traced.flag ?? ''} ${traced.reason ?? ''})`);
        continue;
      }
      const want: Fields = {
        // A forward's status is the upstream's answer (nginx refuses "/../x" with 400 under NONE).
        status: d.status ?? live.status,
        flag: d.flag,
        reason: d.reason,
        cluster: d.cluster,
        upstreamHost: d.upstreamHost,
        // A forward from the OS default address leaves from the loopback default (127.0.0.1).
        sourceAddress: d.sourceAddress ?? (d.upstreamHost !== null && live.sourceAddress !== null && d.flag === '-' ? '127.0.0.1' : null),
      };
      for (const [k, v] of Object.entries(c.expect ?? {}) as [keyof Fields, unknown][]) {
        if (live[k] !== v) mismatches.push(`${c.label}: live ${k} ${JSON.stringify(live[k])}, must be ${JSON.stringify(v)}`);
      }
      const diff = (Object.keys(want) as (keyof Fields)[]).filter((k) => want[k] !== live[k]);
      if (diff.length > 0) mismatches.push(`${c.label} ${JSON.stringify(c.target)} ${JSON.stringify(c.headers)}: ${diff.map((k) => `${k} trace=${JSON.stringify(want[k])} live=${JSON.stringify(live[k])}`).join(', ')}`);
    }
  } finally {
    await gate.stop();
    cfg.cleanup();
  }
  return { total: s.cases.length, mismatches, bypasses };
}

/** Opens a TLS connection (the peer behind hangs up at once) and waits until it is closed. */
function tlsHello(port: number, sni: string | null): Promise<{ data: string }> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(sni !== null ? { servername: sni } : {}) });
    const timer = setTimeout(() => s.destroy(), 8000);
    const done = (): void => {
      clearTimeout(timer);
      resolve({ data: '' });
    };
    s.on('error', done);
    s.on('close', done);
  });
}

/**
 * Sends one request inside TLS (the chain is verified against `ca`; the name is not, so SNI
 * spellings the certificate does not cover still reach the proxy) and reads until the close.
 */
function tlsExchange(port: number, sni: string | null, request: string, ca: string | undefined): Promise<{ data: string }> {
  return new Promise((resolve) => {
    let data = '';
    const s = tlsConnect({ host: '127.0.0.1', port, ...(ca !== undefined ? { ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false }), ...(sni !== null ? { servername: sni } : {}) }, () => s.write(request));
    const timer = setTimeout(() => s.destroy(), 8000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => (data += d));
    const done = (): void => {
      clearTimeout(timer);
      resolve({ data });
    };
    s.on('error', done);
    s.on('close', done);
  });
}

// ------------------------------------------------------------------------------------------------
// The table

/** 60 spellings of paths around /admin: dot segments, slashes, escapes, case, backslashes. */
export const PATH_VARIANTS: readonly string[] = [
  '/admin', '/admin/', '/admin/x', '//admin', '///admin', '/./admin', '/.//admin', '/public/../admin', '/public/./../admin', '/public//../admin',
  '/public/..//admin', '/a/b/../../admin', '/../admin', '/../../admin', '/%2e/admin', '/%2e%2e/admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin', '/public/%2e%2E/admin', '/public/.%2e/admin',
  '/public/%2e./admin', '/%61dmin', '/%41dmin', '/adm%69n', '/ADMIN', '/Admin', '/%2fadmin', '/%2Fadmin', '/public%2f..%2fadmin', '/public/..%2fadmin',
  '/public/..%2Fadmin', '/public%5c..%5cadmin', '/%5cadmin', '/%5Cadmin', '/public/..%5Cadmin', '/admin%2f', '/admin%20', '/admin%00', '/admin;x', '/admin?x=1',
  '/admin#frag', '/public', '/public/', '/public/x/..', '/', '//', '/.', '/..', '/%2e', '/%2e%2e',
  '/public/%252e%252e/admin', '/%252fadmin', '/%u0061dmin', '/admin..', '/admin./', '/.admin', '/public/.../admin', '/public/..../admin', '/%7eadmin', '/x/%2E/%2e%2E/admin',
];

function pathCases(host: string): Case[] {
  return PATH_VARIANTS.map((p, i) => ({ target: p, headers: [['Host', host]], label: `path#${i}` }));
}

/** The Gateway egress/egress (istio: egressgateway) with one server (flow YAML), followed by `---`. */
function egressGatewayYaml(server: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [${server}]
---
`;
}

function egressYaml(level: string | undefined, nginxPort: number, upPort: number): string {
  const mesh = level === undefined ? '' : `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    pathNormalization:
      normalization: ${level}
---
`;
  return `${mesh}apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: egress}
spec: {hosts: [app.test, alt.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {http: ${nginxPort}}}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: prod, namespace: egress}
spec: {hosts: [prod.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {http: ${upPort}}}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: egress}
spec: {hosts: [dns.test, nxdomain.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
${egressGatewayYaml('{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}')}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: egress}
spec:
  hosts: [app.test, alt.test]
  gateways: [egress/egress]
  http:
  - name: admin-deny
    match: [{uri: {prefix: /admin}}]
    directResponse: {status: 403, body: {string: "denied\\n"}}
  - name: env-prod
    match: [{headers: {x-env: {exact: prod}}}]
    route: [{destination: {host: prod.test}}]
  - name: underscore-prod
    match: [{headers: {x_env: {exact: prod}}}]
    route: [{destination: {host: prod.test}}]
  - name: envoy-prod
    match: [{headers: {x-envoy-env: {exact: prod}}}]
    route: [{destination: {host: prod.test}}]
  - name: port-authority
    match: [{authority: {exact: "app.test:8080"}}]
    route: [{destination: {host: prod.test}}]
  - name: old
    match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
  - name: secure
    match: [{uri: {prefix: /secure}}]
    redirect: {scheme: https}
  - name: moved
    match: [{uri: {exact: /moved}}]
    redirect: {authority: other.test, redirectCode: 308}
  - name: fault
    match: [{uri: {prefix: /fault}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: prod.test}}]
  - name: split
    match: [{uri: {prefix: /split}}]
    route: [{destination: {host: prod.test}, weight: 100}, {destination: {host: missing.test}, weight: 0}]
  - name: missing
    match: [{uri: {prefix: /missing}}]
    route: [{destination: {host: missing.test}}]
  - name: default
    route: [{destination: {host: app.test}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dns, namespace: egress}
spec:
  hosts: [dns.test, nxdomain.test]
  gateways: [egress/egress]
  http:
  - route: [{destination: {host: dns.test}}]
`;
}

const H = (host: string, ...more: [string, string][]): [string, string][] => [['Host', host], ...more];

/** Hosts, headers, validation, actions and upstream outcomes (one config, default level). */
const OTHER_CASES: readonly Case[] = [
  // authority: case, trailing dot, port, bad spellings, absolute form
  { target: '/x', headers: H('APP.TEST'), label: 'host upper case' },
  { target: '/x', headers: H('app.test.'), label: 'host trailing dot' },
  { target: '/x', headers: H('App.Test.:80'), label: 'host case+dot+port' },
  { target: '/x', headers: H('app.test:80'), label: 'host :80', expect: { cluster: 'outbound|80||app.test' } },
  { target: '/x', headers: H('app.test:8080'), label: 'authority match sees the port', expect: { cluster: 'outbound|80||prod.test' } },
  { target: '/x', headers: H('APP.test.:8080'), label: 'authority match on the canonical authority' },
  { target: '/admin', headers: H('app.test:8080'), label: 'deny before the port route' },
  { target: '/x', headers: H('alt.test'), label: 'second host of the VirtualService' },
  { target: '/x', headers: H('unknown.test'), label: 'host without a virtual host' },
  { target: '/x', headers: H('127.0.0.1'), label: 'IP literal host' },
  { target: '/x', headers: H('[::1]'), label: 'IPv6 literal host' },
  { target: '/x', headers: H('app..test'), label: 'empty label' },
  { target: '/x', headers: H('app.test:abc'), label: 'non-numeric port' },
  { target: '/x', headers: H('app.test:99999'), label: 'port out of range' },
  { target: '/x', headers: H('user@app.test'), label: 'userinfo' },
  { target: '/x', headers: H('app.test', ['Host', 'alt.test']), label: 'two Host lines' },
  { target: 'http://unknown.test/x', headers: H('app.test'), label: 'absolute-form authority wins over Host' },
  { target: 'http://app.test/admin', headers: H('unknown.test'), label: 'absolute-form deny' },
  { target: 'http://APP.TEST./x', headers: H('app.test'), label: 'absolute-form case and dot' },
  { target: 'http://app.test:8080/x', headers: H('app.test'), label: 'absolute-form port' },
  // headers: repeated, case, spacing
  { target: '/x', headers: H('app.test', ['x-env', 'prod']), label: 'header match', expect: { cluster: 'outbound|80||prod.test' } },
  { target: '/x', headers: H('app.test', ['X-ENV', 'prod']), label: 'header name case' },
  { target: '/x', headers: H('app.test', ['x-env', 'dev'], ['x-env', 'prod']), label: 'repeated header, prod second', expect: { cluster: 'outbound|80||app.test' } },
  { target: '/x', headers: H('app.test', ['x-env', 'prod'], ['x-env', 'dev']), label: 'repeated header, prod first', expect: { cluster: 'outbound|80||app.test' } },
  { target: '/x', headers: H('app.test', ['x-env', 'prod'], ['X-Env', 'prod']), label: 'repeated header, same value' },
  { target: '/x', headers: H('app.test', ['x-env', 'Prod']), label: 'header value case' },
  { target: '/x', headers: H('app.test', ['x-env', 'prod,dev']), label: 'header list value' },
  // fields the engine removes before routing (header-hygiene.ts): a route never matches them
  { target: '/x', headers: H('app.test', ['x_env', 'prod']), label: 'underscore header name dropped before routing', expect: { cluster: 'outbound|80||app.test' } },
  { target: '/x', headers: H('app.test', ['X-Envoy-Env', 'prod']), label: 'client x-envoy-* dropped at a gateway', expect: { cluster: 'outbound|80||app.test' } },
  // request validation (the codec)
  { target: '/x', headers: H('app.test', ['x-env ', 'prod']), label: 'space before colon' },
  { target: '/x', headers: H('app.test', ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']), label: 'CL and TE' },
  { target: '/x', headers: H('app.test', ['Content-Length', 'abc']), label: 'bad Content-Length' },
  { target: '/x', headers: H('app.test', ['Transfer-Encoding', 'gzip, chunked, identity']), label: 'obfuscated TE' },
  { target: '/x', headers: H('app.test', ['bad header', 'x']), label: 'space in a header name' },
  { method: 'G@T', target: '/x', headers: H('app.test'), label: 'bad method' },
  { target: 'x', headers: H('app.test'), label: 'target without slash' },
  { target: '/x y', headers: H('app.test'), label: 'space in target' },
  { method: 'CONNECT', target: 'app.test:443', headers: H('app.test:443'), label: 'CONNECT on a route listener' },
  { target: '*', headers: H('app.test'), label: 'asterisk target on GET' },
  // actions
  { target: '/old', headers: H('app.test'), label: 'redirect' },
  { target: '/old/page?x=1', headers: H('app.test'), label: 'redirect keeps the query' },
  { target: '/secure', headers: H('app.test:80'), label: 'https redirect drops :80' },
  { target: '/secure/%7ea//b', headers: H('APP.TEST'), label: 'https redirect with the normalised path' },
  { target: '/moved?q', headers: H('app.test'), label: 'authority redirect 308' },
  { target: '/fault', headers: H('app.test'), label: 'fault abort' },
  { target: '/split', headers: H('app.test'), label: 'weight-0 destination never picked' },
  { target: '/missing', headers: H('app.test'), label: 'missing destination' },
  { target: '/anything', headers: H('app.test'), label: 'default route' },
  // DNS and the SSRF guard
  { target: '/', headers: H('dns.test'), label: 'DNS answer in loopback: SSRF guard' },
  { target: '/', headers: H('nxdomain.test'), label: 'NXDOMAIN' },
  { target: '/', headers: H('DNS.test.'), label: 'DNS host case and dot' },
];

describe('differential: trace and the live proxy decide the same', { skip, concurrency: false }, () => {
  let dns: FakeDns;
  let nginx: Nginx;
  let up: Server;
  let upPort = 0;
  let passthrough: Server;
  let tunnelEnd: NetServer;
  const passIp = loopbackAddress();
  let total = 0;
  const mismatches: string[] = [];

  before(async () => {
    dns = await startFakeDns();
    dns.set('dns.test', () => ({ addresses: ['127.0.0.9'], ttl: 60 }));
    dns.set('nxdomain.test', () => 'nxdomain');
    dns.set('steer.test', () => ({ addresses: [passIp], ttl: 60 }));
    dns.set('metadata.test', () => ({ addresses: ['169.254.169.254'], ttl: 60 }));
    const nginxPort = await freeTcpPort();
    nginx = await startNginx(() => `server {\n  listen 127.0.0.1:${nginxPort};\n  location /admin { return 200 "ADMIN-SECRET\\n"; }\n  location / { return 200 "public\\n"; }\n}\n`, '127.0.0.1', nginxPort);
    up = createServer((_req, res) => res.end('prod\n'));
    upPort = await listen(up, '127.0.0.1');
    passthrough = createServer((_req, res) => res.end('passthrough\n'));
    await listen(passthrough, passIp, 80);
    // A TLS port that accepts and hangs up: an opened CONNECT tunnel ends at once and is logged.
    tunnelEnd = createNetServer((sock) => sock.destroy());
    await listen(tunnelEnd, passIp, 443);
  });

  after(async () => {
    await nginx?.stop();
    up?.close();
    passthrough?.close();
    tunnelEnd?.close();
    await dns?.close();
  });

  const gw = identity('gateway', 'egress', { istio: 'egressgateway' });
  const gwArgs = ['--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', '80=0'];
  const nginxPort = (): number => nginx.port;

  for (const level of [undefined, 'NONE', 'BASE', 'DECODE_AND_MERGE_SLASHES'] as const) {
    it(`path normalisation ${level ?? 'default (MERGE_SLASHES)'}: 60 spellings around a deny on /admin, nginx behind`, async () => {
      const strict = level === undefined || level === 'DECODE_AND_MERGE_SLASHES';
      const r = await runConfig({ yaml: egressYaml(level, nginxPort(), upPort), id: gw, args: gwArgs, allowCidrs: [], listenerPort: 80, cases: pathCases('app.test'), ...(strict ? { forbiddenBody: 'ADMIN-SECRET' } : {}) }, dns);
      total += r.total;
      mismatches.push(...r.mismatches);
      assert.deepEqual(r.mismatches, [], 'trace and proxy agree');
      if (strict) assert.deepEqual(r.bypasses, [], 'no spelling reaches nginx /admin');
    });
  }

  it('hosts, headers, request validation, redirects, faults, weights, DNS and SSRF', async () => {
    const r = await runConfig({ yaml: egressYaml(undefined, nginxPort(), upPort), id: gw, args: gwArgs, allowCidrs: [], listenerPort: 80, cases: OTHER_CASES, forbiddenBody: 'ADMIN-SECRET' }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
    assert.deepEqual(r.bypasses, []);
  });

  it('AuthorizationPolicy as the rbac filter: allow, deny, dry-run, before routing and faults', async () => {
    const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-private, namespace: egress}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/private*"]}}]
  - when: [{key: "request.headers[x-user]", values: [blocked]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-reads, namespace: egress}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET, HEAD]}}]
  - from: [{source: {ipBlocks: ["127.0.0.1/32"]}}]
    to: [{operation: {methods: [POST], paths: [/upload]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny-debug, namespace: egress, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/debug*"]}}]
`;
    const rbac = (label: string, target: string, expect: Partial<Fields>, method = 'GET', ...more: [string, string][]): Case => ({ method, target, headers: H('app.test', ...more), label: `rbac: ${label}`, expect });
    const cases: Case[] = [
      rbac('GET allowed by ALLOW rule 0', '/x', { status: 200, reason: null }),
      rbac('POST /upload allowed by ALLOW rule 1 (source ipBlocks)', '/upload', { status: 200 }, 'POST'),
      rbac('POST elsewhere matches no ALLOW rule', '/x', { status: 403, reason: 'rbac_denied', upstreamHost: null }, 'POST'),
      rbac('DENY by path beats ALLOW', '/private/a', { status: 403, reason: 'rbac_denied', upstreamHost: null }),
      rbac('DENY sees the normalised path', '//private/../private/b', { status: 403, reason: 'rbac_denied' }),
      rbac('DENY by header condition', '/x', { status: 403, reason: 'rbac_denied' }, 'GET', ['x-user', 'blocked']),
      rbac('DENY by header condition, repeated header is comma-joined', '/x', { status: 200 }, 'GET', ['x-user', 'ok'], ['x-user', 'blocked']),
      rbac('dry-run DENY: forwarded, logged', '/debug/vars', { status: 200, reason: 'rbac_dry_run_denied' }),
      rbac('denial comes before a fault abort', '/fault', { status: 403, reason: 'rbac_denied' }, 'DELETE'),
      rbac('an allowed fault abort still aborts', '/fault', { status: 418 }),
      rbac('allowed redirect', '/old', { status: 301 }),
      rbac('denied redirect', '/old', { status: 403 }, 'PUT'),
      rbac('allowed direct response', '/admin', { status: 403, reason: null }),
      { method: 'POST', target: '/x', headers: H('unknown.test'), label: 'rbac: a request no route matches is authorized too', expect: { status: 403, reason: 'rbac_denied' } },
      { target: '/x', headers: H('unknown.test'), label: 'rbac: allowed, then no route', expect: { status: 404 } },
      { target: '/x y', headers: H('app.test'), label: 'rbac: a request the codec refused is not authorized', expect: { status: 400 } },
    ];
    const r = await runConfig({ yaml: `${egressYaml(undefined, nginxPort(), upPort)}---\n${policies}`, id: gw, args: gwArgs, allowCidrs: [], listenerPort: 80, cases, forbiddenBody: 'ADMIN-SECRET' }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('an unavailable fixed source address fails closed, and trace says so', async () => {
    const cases: Case[] = [
      { target: '/x', headers: H('prod.test'), label: 'no virtual host (no upstream needed)' },
      { target: '/x', headers: H('app.test', ['x-env', 'prod']), label: 'forward from a missing address' },
      { target: '/admin', headers: H('app.test'), label: 'deny needs no address' },
    ];
    const r = await runConfig({ yaml: egressYaml(undefined, nginxPort(), upPort), id: gw, args: gwArgs, allowCidrs: [], sourceAddress: '192.0.2.55', listenerPort: 80, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('sidecar ALLOW_ANY passthrough dials the listener port, never the port in Host', async () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: app}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
${addressEntry('known', 'app', 'plain.test', ['127.0.0.1'], { targetPort: upPort })}`;
    const cases: Case[] = [
      { target: '/', headers: H('steer.test'), label: 'passthrough by name' },
      { target: '/', headers: H('steer.test:8080'), label: 'port in Host is not dialed', expect: { upstreamHost: `${passIp}:80`, status: 200 } },
      { target: '/', headers: H('steer.test:22'), label: 'port 22 in Host is not dialed', expect: { upstreamHost: `${passIp}:80` } },
      { target: '/', headers: H(`${passIp}:8080`), label: 'IP literal with a port', expect: { upstreamHost: `${passIp}:80` } },
      { target: 'http://steer.test:8443/', headers: H('steer.test'), label: 'absolute-form port is not dialed', expect: { upstreamHost: `${passIp}:80` } },
      { target: '/', headers: H('metadata.test'), label: 'metadata address from DNS' },
      { target: '/', headers: H('10.0.0.1'), label: 'private IP literal' },
      { target: '/', headers: H('0xa9fea9fe'), label: 'hex metadata address' },
      { target: '/', headers: H('plain.test'), label: 'registered host' },
      { target: '/', headers: H('PLAIN.test.:80'), label: 'registered host, other spelling' },
    ];
    const r = await runConfig({ yaml, id: identity('sidecar', 'app'), args: ['--role', 'sidecar', '--namespace', 'app', '--port-map', '80=0,15001=0,15006=0'], allowCidrs: ['127.0.0.0/8'], listenerPort: 80, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('the four-file egress gateway config, unchanged, on the egress gateway', async () => {
    dns.set('edition.cnn.com', () => ({ addresses: [passIp], ttl: 60 }));
    dns.set('www.naver.com', () => 'nxdomain');
    const yaml = readFileSync(join(FIXTURES, 'http', '003-egress-gateway-4-files.yaml'), 'utf8');
    const cases: Case[] = [
      { target: '/', headers: H('edition.cnn.com'), label: 'routed host' },
      { target: '/politics//x/../y', headers: H('EDITION.CNN.COM.'), label: 'routed host, other spelling, normalised path' },
      { target: '/', headers: H('edition.cnn.com:8080'), label: 'routed host with a port in Host' },
      { target: '/', headers: H('www.naver.com'), label: 'routed host without a DNS answer' },
      { target: '/', headers: H('www.google.com'), label: 'host the gateway does not serve' },
      { target: 'http://www.google.com/', headers: H('edition.cnn.com'), label: 'absolute-form names another host' },
      { target: '/', headers: H('edition.cnn.com', ['Host', 'www.naver.com']), label: 'two Host lines' },
      { target: '/%2Fx', headers: H('edition.cnn.com'), label: 'encoded slash' },
    ];
    const r = await runConfig({ yaml, id: identity('gateway', 'istio-system', { istio: 'egressgateway' }), args: ['--role', 'gateway', '--namespace', 'istio-system', '--labels', 'istio=egressgateway', '--port-map', '80=0,443=0'], allowCidrs: ['127.0.0.0/8'], listenerPort: 80, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('egress router http-proxy: CONNECT and absolute-form requests against its allow/deny list', async () => {
    dns.set('allowed.test', () => ({ addresses: [passIp], ttl: 60 }));
    dns.set('denied.test', () => ({ addresses: [passIp], ttl: 60 }));
    dns.set('other.test', () => ({ addresses: [passIp], ttl: 60 }));
    const yaml = httpProxyRouter(passIp, ['!denied.test', 'allowed.test', `${passIp}/32`]);
    const P = (target: string, label: string, method = 'GET', host = target.replace(/^https?:\/\//, '').replace(/\/.*$/, '')): Case => ({ method, target, headers: H(host), label, viaProxy: true });
    const cases: Case[] = [
      P('http://allowed.test/x', 'absolute-form allowed'),
      P('http://ALLOWED.TEST./x//y/../z', 'absolute-form, other spelling, normalised path'),
      P('http://denied.test/', 'absolute-form denied'),
      P('http://other.test/', 'absolute-form no match'),
      P('http://nxdomain.test/', 'absolute-form without a DNS answer'),
      P(`http://${passIp}/`, 'absolute-form IP literal allowed by CIDR'),
      P('http://10.0.0.1/', 'absolute-form private IP, no entry'),
      P('https://allowed.test/', 'https target needs TLS origination'),
      P('http://allowed.test/%2Fx', 'absolute-form encoded slash'),
      P('denied.test:443', 'CONNECT denied', 'CONNECT'),
      P('other.test:443', 'CONNECT allowed by the address entry (tunnel opened)', 'CONNECT'),
      P('allowed.test:443', 'CONNECT allowed by name (tunnel opened)', 'CONNECT'),
      P('10.0.0.1:443', 'CONNECT to an address no entry allows', 'CONNECT'),
      P('allowed.test:22', 'CONNECT port not allowed', 'CONNECT'),
      P('nxdomain.test:443', 'CONNECT without a DNS answer', 'CONNECT'),
      P('allowed.test', 'CONNECT without a port', 'CONNECT'),
      P('Denied.Test.:443', 'CONNECT denied, other spelling', 'CONNECT'),
    ];
    const r = await runConfig({ yaml, id: identity('router', 'default', { app: 'egress-http-proxy' }), args: ['--role', 'router', '--namespace', 'default', '--labels', 'app=egress-http-proxy', '--port-map', '8080=0'], allowCidrs: ['127.0.0.0/8'], listenerPort: 8080, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('egress router http-proxy with AuthorizationPolicies: CONNECT and absolute-form requests, with the allow/deny list', async () => {
    dns.set('allowed.test', () => ({ addresses: [passIp], ttl: 60 }));
    dns.set('denied.test', () => ({ addresses: [passIp], ttl: 60 }));
    const policies = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reads-and-tunnels, namespace: default}
spec:
  selector: {matchLabels: {app: egress-http-proxy}}
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET, CONNECT]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-blocked, namespace: default}
spec:
  selector: {matchLabels: {app: egress-http-proxy}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/blocked*"]}}]
  - to: [{operation: {methods: [CONNECT], ports: ["8080"]}}]
    when: [{key: "request.headers[x-tunnel]", values: [no]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny-other, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: egress-http-proxy}}
  action: DENY
  rules: [{to: [{operation: {hosts: [allowed.test]}}]}]
`;
    const yaml = httpProxyRouter(passIp, ['!denied.test', 'allowed.test', `${passIp}/32`]) + policies;
    const P = (target: string, label: string, expect: Partial<Fields>, method = 'GET', ...more: [string, string][]): Case => ({ method, target, headers: [['Host', target.replace(/^https?:\/\//, '').replace(/\/.*$/, '')], ...more], label: `rbac: ${label}`, viaProxy: true, expect });
    const cases: Case[] = [
      P('http://allowed.test/x', 'absolute-form GET allowed, dry-run DENY logged', { status: 200, reason: 'rbac_dry_run_denied' }),
      P('http://allowed.test/blocked', 'absolute-form DENY by path', { status: 403, reason: 'rbac_denied', upstreamHost: null }),
      P('http://allowed.test/x', 'absolute-form POST matches no ALLOW rule', { status: 403, reason: 'rbac_denied' }, 'POST'),
      P('http://denied.test/', 'absolute-form allowed by policy, refused by the list', { status: 403 }),
      P('http://denied.test/', 'absolute-form refused by both: the rbac filter answers', { status: 403, reason: 'rbac_denied' }, 'POST'),
      P('allowed.test:443', 'CONNECT allowed (tunnel opened)', { status: 200 }, 'CONNECT'),
      P('allowed.test:443', 'CONNECT denied by a header condition', { status: 403, reason: 'rbac_denied' }, 'CONNECT', ['x-tunnel', 'no']),
      P('denied.test:443', 'CONNECT allowed by policy, refused by the list', { status: 403 }, 'CONNECT'),
    ];
    const r = await runConfig({ yaml, id: identity('router', 'default', { app: 'egress-http-proxy' }), args: ['--role', 'router', '--namespace', 'default', '--labels', 'app=egress-http-proxy', '--port-map', '8080=0'], allowCidrs: ['127.0.0.0/8'], listenerPort: 8080, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('TLS passthrough by SNI: case, trailing dot, missing and unknown names', async () => {
    dns.set('allowed.test', () => ({ addresses: [passIp], ttl: 60 }));
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: allowed, namespace: egress}
spec: {hosts: [allowed.test, nxdomain.test], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
---
${egressGatewayYaml('{port: {number: 443, name: tls, protocol: TLS}, hosts: [allowed.test, nxdomain.test], tls: {mode: PASSTHROUGH}}')}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: allowed, namespace: egress}
spec:
  hosts: [allowed.test, nxdomain.test]
  gateways: [egress/egress]
  tls:
  - match: [{port: 443, sniHosts: [allowed.test]}]
    route: [{destination: {host: allowed.test, port: {number: 443}}}]
  - match: [{port: 443, sniHosts: [nxdomain.test]}]
    route: [{destination: {host: nxdomain.test, port: {number: 443}}}]
`;
    const T = (sni: string | null, label: string): Case => ({ target: '', headers: [], label, tlsSni: sni });
    const cases: Case[] = [
      T('allowed.test', 'SNI routed'),
      T('ALLOWED.Test', 'SNI upper case'),
      T('allowed.test.', 'SNI trailing dot'),
      T('evil.test', 'SNI not routed'),
      T('nxdomain.test', 'SNI routed, no DNS answer'),
      T(null, 'no SNI'),
    ];
    const r = await runConfig({ yaml, id: gw, args: ['--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', '443=0'], allowCidrs: ['127.0.0.0/8'], listenerPort: 443, cases }, dns);
    total += r.total;
    mismatches.push(...r.mismatches);
    assert.deepEqual(r.mismatches, []);
  });

  it('HTTPS-terminating Gateway (tls SIMPLE): SNI selects the server, Host routes the HTTP inside', async () => {
    const pki = makePki();
    try {
      await pki.ca('ca');
      const leaf = await pki.leaf('app', 'ca', { dns: 'app.test' });
      const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: egress}
spec: {hosts: [app.test, alt.test, other.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {http: ${nginxPort()}}}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: prod, namespace: egress}
spec: {hosts: [prod.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {http: ${upPort}}}]}
---
${egressGatewayYaml(`{port: {number: 443, name: https, protocol: HTTPS}, hosts: [app.test, alt.test, other.test], tls: {mode: SIMPLE, serverCertificate: ${leaf.cert}, privateKey: ${leaf.key}}}`)}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: egress}
spec:
  hosts: [app.test, alt.test]
  gateways: [egress/egress]
  http:
  - name: admin-deny
    match: [{uri: {prefix: /admin}}]
    directResponse: {status: 403, body: {string: "denied\\n"}}
  - name: prod
    match: [{uri: {prefix: /prod}}]
    route: [{destination: {host: prod.test}}]
  - name: secure
    match: [{uri: {prefix: /secure}}]
    redirect: {scheme: https}
  - name: missing
    match: [{uri: {prefix: /missing}}]
    route: [{destination: {host: missing.test}}]
  - name: default
    route: [{destination: {host: app.test}}]
`;
      const S = (sni: string | null, target: string, host: string, label: string, expect?: Partial<Fields>): Case => ({ target, headers: H(host), label, https: sni, ...(expect ? { expect } : {}) });
      const cases: Case[] = [
        S('app.test', '/x', 'app.test', 'matched host', { status: 200, cluster: 'outbound|80||app.test' }),
        S('app.test', '/prod/x', 'app.test', 'path route', { cluster: 'outbound|80||prod.test' }),
        S('app.test', '/admin', 'app.test', 'deny route', { status: 403 }),
        S('app.test', '/public/../admin', 'app.test', 'deny after normalisation', { status: 403 }),
        S('app.test', '/secure', 'app.test', 'https redirect inside TLS'),
        S('app.test', '/missing', 'app.test', 'unregistered destination'),
        S('other.test', '/x', 'other.test', 'served host without a VirtualService', { status: 404 }),
        S('app.test', '/x', 'unknown.test', 'Host no virtual host', { status: 404 }),
        S('app.test', '/x', 'alt.test', 'SNI and Host differ, both served'),
        S('alt.test', '/prod', 'app.test', 'SNI alt, Host app'),
        S('app.test', '/x', 'other.test', 'SNI routed, Host without a VirtualService'),
        S('APP.Test', '/x', 'app.test', 'SNI upper case'),
        S('app.test.', '/x', 'app.test', 'SNI trailing dot'),
        S('app.test', '/x', 'APP.TEST.:443', 'Host case, dot and port'),
        S('evil.test', '/x', 'app.test', 'SNI the Gateway does not serve'),
        S(null, '/x', 'app.test', 'no SNI'),
      ];
      const r = await runConfig({ yaml, id: gw, args: ['--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', '443=0'], allowCidrs: [], listenerPort: 443, cases, ca: pki.read(join(pki.dir, 'ca.crt')), forbiddenBody: 'ADMIN-SECRET' }, dns);
      total += r.total;
      mismatches.push(...r.mismatches);
      assert.deepEqual(r.mismatches, []);
      assert.deepEqual(r.bypasses, []);
    } finally {
      pki.cleanup();
    }
  });

  it('covers at least 200 cases, all in agreement', () => {
    assert.ok(total >= 200, `${total} cases`);
    assert.equal(mismatches.length, 0);
    console.log(`# differential: ${total} cases, ${total - mismatches.length} agree`);
  });
});
