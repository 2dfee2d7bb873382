/**
 * `tollgate control-plane`: serves per-proxy snapshots over the NDJSON stream, recompiles on every
 * accepted config and pushes only to the proxies whose snapshot changed, tracks ACK/NACK, and
 * answers the views (`/v1/proxies`, `/v1/proxies/<key>/snapshot`, `/v1/config`, `/ready`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Model } from '../model/build.js';
import { buildSnapshot } from '../snapshot/build.js';
import { redactSnapshot } from '../snapshot/secrets.js';
import type { ProxyIdentity } from '../snapshot/types.js';
import type { ConfigSource, LeftOutObject, Rejection } from './config-source.js';
import { CERTIFICATE_PATH, encode, identityKey, LineDecoder, STREAM_PATH, type ProxyMessage } from './protocol.js';
import { Session, type SessionView } from './sessions.js';
import { MAX_LEASE_MS, MemoryLeaseStore, type LeaseStore } from './leases.js';
import { bearerToken, type Authenticator, type Principal } from './auth.js';
import { CertificateRequestError, type CertificateAuthority } from './ca/authority.js';

export interface ControlPlaneOptions {
  readonly source: ConfigSource;
  /** Every request but /ready and /metrics must carry a bearer token this accepts. */
  readonly authenticator: Authenticator;
  /** Serve TLS with this certificate (PEM). The CLI always does; plaintext is for in-process embedding. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly pingIntervalMs?: number;
  readonly log?: (line: string) => void;
  /** Arbiter of floating source address leases (default: this process, in memory). */
  readonly leases?: LeaseStore;
  /** Signs workload certificates (POST /v1/certificate); absent: that path answers 404. */
  readonly ca?: CertificateAuthority;
}

export interface ConfigView {
  readonly generation?: number;
  readonly objects?: number;
  readonly loadedAt?: number;
  readonly rejected?: { readonly at: number; readonly errors: readonly string[] };
  /** Objects that failed validation and are served without (the Kubernetes source skips them). */
  readonly leftOut?: readonly LeftOutObject[];
}

export class ControlPlane {
  private readonly server: Server;
  private readonly sessions = new Map<string, Session>();
  private sessionCounter = 0;
  private model: Model | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private leftOutLogged = new Set<string>();
  readonly leases: LeaseStore;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.log = opts.log ?? (() => undefined);
    this.leases = opts.leases ?? new MemoryLeaseStore();
    this.model = opts.source.config?.model;
    opts.source.onChange((e) => {
      if (e.kind === 'accepted') {
        this.model = e.config.model;
        const pushed = this.pushAll();
        const leftOut = e.config.leftOut;
        this.log(`config generation ${e.config.generation} accepted (${e.config.model.resources.length} objects${leftOut.length ? `, ${leftOut.length} left out` : ''}); pushed to ${pushed} of ${this.sessions.size} proxies`);
        this.logLeftOut(leftOut);
      } else {
        this.log(`config rejected, keeping the last good one:\n${e.rejection.summary}`);
      }
    });
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    };
    opts.ca?.onChange(() => this.pushTrust());
    this.server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, handler) : createServer(handler);
    // Snapshot streams are long-lived; Node's default request timeout would cut them.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 10_000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 15_000);
        this.pingTimer.unref();
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Serves a new certificate to new connections (a renewed or re-issued one); open streams keep theirs. */
  setTls(tls: { readonly cert: string | Buffer; readonly key: string | Buffer }): void {
    if (!(this.server instanceof TlsServer)) throw new Error('this control plane serves plaintext');
    this.server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Logs each object the first time it is left out, and once when it is back. */
  private logLeftOut(leftOut: readonly LeftOutObject[]): void {
    const now = new Map(leftOut.map((o) => [o.source, o]));
    for (const [source, o] of now) if (!this.leftOutLogged.has(source)) this.log(`left out ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name} (${source}); the rest is served:\n  ${o.errors.join('\n  ')}`);
    for (const source of this.leftOutLogged) if (!now.has(source)) this.log(`${source} is valid again and served`);
    this.leftOutLogged = new Set(now.keys());
  }

  proxies(): SessionView[] {
    return [...this.sessions.values()].map((s) => s.view()).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  configView(): ConfigView {
    const c = this.opts.source.config;
    const r: Rejection | undefined = this.opts.source.rejection;
    return {
      ...(c ? { generation: c.generation, objects: c.model.resources.length, loadedAt: c.loadedAt } : {}),
      ...(r ? { rejected: { at: r.at, errors: r.summary.split('\n') } } : {}),
      ...(c && c.leftOut.length > 0 ? { leftOut: c.leftOut } : {}),
    };
  }

  /** Prometheus text: the config's state, one `tollgate_config_rejected` series per object left out. */
  metrics(): string {
    const c = this.opts.source.config;
    const lines = [
      '# HELP tollgate_config_generation Generation of the config in force (0: none yet).',
      '# TYPE tollgate_config_generation gauge',
      `tollgate_config_generation ${c?.generation ?? 0}`,
      '# HELP tollgate_config_objects Objects in the config in force.',
      '# TYPE tollgate_config_objects gauge',
      `tollgate_config_objects ${c?.model.resources.length ?? 0}`,
      '# HELP tollgate_config_last_rejected 1 while the newest config was rejected as a whole (the last good one is served).',
      '# TYPE tollgate_config_last_rejected gauge',
      `tollgate_config_last_rejected ${this.opts.source.rejection ? 1 : 0}`,
      '# HELP tollgate_config_rejected 1 for each object left out of the config because it is invalid.',
      '# TYPE tollgate_config_rejected gauge',
      ...(c?.leftOut ?? []).map((o) => `tollgate_config_rejected{kind="${label(o.kind)}",namespace="${label(o.namespace)}",name="${label(o.name)}"} 1`),
      '# HELP tollgate_proxies Connected proxies by sync state.',
      '# TYPE tollgate_proxies gauge',
      ...['SYNCED', 'STALE', 'NACKED', 'NOT_SENT'].map((st) => `tollgate_proxies{state="${st}"} ${this.proxies().filter((p) => p.state === st).length}`),
    ];
    return lines.join('\n') + '\n';
  }

  /** Recompiles every connected proxy's snapshot; pushes where the version changed. */
  private pushAll(): number {
    let pushed = 0;
    for (const s of this.sessions.values()) if (this.pushTo(s)) pushed++;
    return pushed;
  }

  private pushTo(s: Session): boolean {
    if (!this.model) return false;
    const snapshot = buildSnapshot(this.model, s.node, { secretNamespace: s.node.namespace });
    return s.push(snapshot, (nonce) => encode({ type: 'snapshot', version: snapshot.version, nonce, snapshot }));
  }

  /** Tells every connected proxy the CA changed: new roots to trust, and a certificate to renew. */
  private pushTrust(): void {
    const line = this.trustLine();
    if (line === undefined) return;
    for (const s of this.sessions.values()) s.sendLine(line);
    this.log(`CA changed: told ${this.sessions.size} proxies to renew their certificates`);
  }

  private trustLine(): string | undefined {
    const ca = this.opts.ca;
    if (!ca?.material) return undefined;
    return encode({ type: 'trust', rootCertsPem: ca.rootCertsPem(), signerSha256: ca.signerSha256() });
  }

  /** Signs the CSR for the credential's identity; the proxy's key never comes here, only its public half. */
  private async certificateRequest(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    const ca = this.opts.ca;
    if (!ca) {
      req.resume();
      return json(res, 404, { error: 'this control plane runs no CA (start it with --ca-dir, or in Kubernetes mode)' });
    }
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    let body: Record<string, unknown>;
    try {
      body = await readSmallJson(req, 16 * 1024);
    } catch {
      return json(res, 413, { error: 'the request body is larger than 16 KiB' });
    }
    const csr = body['csr'];
    if (typeof csr !== 'string') return json(res, 400, { error: 'expected {"csr": "<PEM certificate request>"}' });
    try {
      const issued = await ca.issueWorkload(csr, principal);
      this.log(`issued ${issued.spiffeId} to ${remote} (${principal.via}), valid until ${issued.notAfter}`);
      json(res, 200, issued);
    } catch (err) {
      if (!(err instanceof CertificateRequestError)) throw err;
      this.log(`refused a certificate to ${remote} authenticated as ${principal.namespace}/${principal.serviceAccount} (${principal.via}): ${err.message}`);
      json(res, err.status, { error: err.message });
    }
  }

  private ping(): void {
    const line = encode({ type: 'ping' });
    for (const s of this.sessions.values()) s.sendLine(line);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    // Probes and scrapes need no token: neither carries key material.
    if (req.method === 'GET' && url.pathname === '/ready') return json(res, this.model ? 200 : 503, { ready: this.model !== undefined });
    if (req.method === 'GET' && url.pathname === '/metrics') {
      const text = this.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
      return void res.end(text);
    }
    const token = bearerToken(req);
    const principal = token === undefined ? undefined : await this.opts.authenticator.authenticate(token);
    if (!principal) {
      req.resume();
      res.setHeader('www-authenticate', 'Bearer');
      return json(res, 401, { error: token === undefined ? 'a bearer token is required (Authorization: Bearer ...)' : 'the bearer token is not valid' });
    }
    if (req.method === 'POST' && url.pathname === STREAM_PATH) return this.stream(req, res, principal);
    if (req.method === 'POST' && url.pathname === CERTIFICATE_PATH) return this.certificateRequest(req, res, principal);
    const lease = /^\/v1\/leases\/([a-z0-9][a-z0-9.-]{0,252})$/.exec(url.pathname);
    if (lease && (req.method === 'POST' || req.method === 'DELETE')) return void this.leaseRequest(lease[1] ?? '', req, res, url);
    if (url.pathname === '/v1/leases' && req.method === 'GET') return void this.leases.list().then((l) => json(res, 200, l), (e: unknown) => json(res, 503, { error: String(e) }));
    if (req.method !== 'GET') return json(res, 405, { error: 'method not allowed' });
    if (url.pathname === '/v1/proxies') return json(res, 200, this.proxies());
    if (url.pathname === '/v1/config') return json(res, 200, this.configView());
    const m = /^\/v1\/proxies\/(.+)\/snapshot$/.exec(url.pathname);
    if (m) {
      const key = decodeURIComponent(m[1] ?? '');
      const s = [...this.sessions.values()].find((x) => x.key === key || x.id === key || x.node.name === key);
      return s?.snapshot ? json(res, 200, redactSnapshot(s.snapshot)) : json(res, 404, { error: `no connected proxy "${key}" with a snapshot`, proxies: this.proxies().map((p) => p.key) });
    }
    json(res, 404, { error: 'not found', paths: [STREAM_PATH, CERTIFICATE_PATH, '/ready', '/metrics', '/v1/proxies', '/v1/proxies/<key>/snapshot', '/v1/config', '/v1/leases'] });
  }

  /** POST {holder, durationMs}: take or renew (200, or 409 with the live lease); DELETE ?holder=: release. */
  private async leaseRequest(name: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      if (req.method === 'DELETE') {
        await this.leases.release(name, url.searchParams.get('holder') ?? '');
        res.writeHead(204).end();
        return;
      }
      const body = await readSmallJson(req, 4096);
      const holder = typeof body['holder'] === 'string' ? body['holder'] : '';
      const durationMs = typeof body['durationMs'] === 'number' ? body['durationMs'] : NaN;
      if (holder === '' || holder.length > 253 || !(durationMs >= 100 && durationMs <= MAX_LEASE_MS)) {
        return json(res, 400, { error: `expected {"holder": "<name>", "durationMs": 100..${MAX_LEASE_MS}}` });
      }
      const r = await this.leases.acquire(name, holder, durationMs);
      if (r.granted && r.lease.acquiredAt === r.lease.renewedAt) this.log(`lease ${name} acquired by ${holder}${r.lease.previousHolder ? ` (was ${r.lease.previousHolder})` : ''}`);
      json(res, r.granted ? 200 : 409, r);
    } catch (e) {
      json(res, 503, { error: String(e) });
    }
  }

  private stream(req: IncomingMessage, res: ServerResponse, principal: Principal): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true, 10_000);
    let session: Session | undefined;
    const send = (line: string): void => {
      if (!res.writableEnded) res.write(line);
    };
    const decoder = new LineDecoder((line) => {
      let msg: ProxyMessage;
      try {
        msg = JSON.parse(line) as ProxyMessage;
      } catch {
        send(encode({ type: 'error', error: 'malformed message: not JSON' }));
        res.end();
        return;
      }
      if (msg.type === 'hello') {
        if (session) return;
        // The credential decides the namespace; a proxy claiming another one gets nothing.
        if (msg.node?.namespace !== principal.namespace) {
          this.log(`refused a proxy from ${req.socket.remoteAddress}: it claims namespace "${String(msg.node?.namespace)}" but authenticated as ${principal.namespace}/${principal.serviceAccount} (${principal.via})`);
          send(encode({ type: 'error', error: `namespace "${String(msg.node?.namespace)}" does not match the credential's namespace "${principal.namespace}"` }));
          res.end();
          return;
        }
        const node: ProxyIdentity = { role: msg.node.role, namespace: principal.namespace, name: msg.node.name ?? '', labels: msg.node.labels ?? {}, ...(typeof msg.node.nodeName === 'string' && msg.node.nodeName !== '' ? { nodeName: msg.node.nodeName } : {}) };
        const id = `p${++this.sessionCounter}`;
        session = new Session(id, identityKey(node), node, `${req.socket.remoteAddress}:${req.socket.remotePort}`, send);
        // A reconnecting proxy that already runs the current version is not sent it again.
        if (msg.appliedVersion) {
          session.sentVersion = msg.appliedVersion;
          session.ackedVersion = msg.appliedVersion;
        }
        this.sessions.set(id, session);
        this.log(`proxy ${session.key} connected from ${session.remote}`);
        // A proxy that was away during a rotation learns the roots now, and renews if its certificate is from the old CA.
        const trust = this.trustLine();
        if (trust !== undefined) send(trust);
        this.pushTo(session);
      } else if (!session) {
        send(encode({ type: 'error', error: 'send hello first' }));
      } else if (msg.type === 'ack') {
        session.ack(msg.version, msg.nonce, msg.warnings ?? []);
      } else if (msg.type === 'nack') {
        session.nack(msg.version, msg.nonce, msg.error);
        this.log(`proxy ${session.key} NACKed ${msg.version}: ${msg.error}`);
      }
    });
    req.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        send(encode({ type: 'error', error: String(err) }));
        res.end();
      }
    });
    const gone = (): void => {
      if (session && this.sessions.get(session.id) === session) {
        this.sessions.delete(session.id);
        this.log(`proxy ${session.key} disconnected`);
      }
    };
    req.on('close', gone);
    res.on('close', gone);
  }
}

/** Prometheus label value escaping. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readSmallJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
      if (text.length > max) {
        req.destroy();
        reject(new Error('body too large'));
      }
    });
    req.on('end', () => {
      try {
        const v: unknown = JSON.parse(text || '{}');
        resolve(v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {});
      } catch {
        resolve({});
      }
    });
    req.on('error', reject);
  });
}
