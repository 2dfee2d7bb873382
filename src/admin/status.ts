/**
 * A sidecar's status ports, where Istio has them, so a pod's probes and scrapes (which the capture
 * rules exclude from redirection) reach the proxy itself:
 *   15021  GET /healthz/ready      200 once a snapshot is applied and the proxy is not draining
 *   15090  GET /stats/prometheus   the proxy's metrics
 *   15020  GET /stats/prometheus   merged: the proxy's metrics, then the app's (when it has a
 *                                  metrics URL); also /healthz/ready
 * Read-only, node:http (a local control surface, not a proxy path).
 */
import { get as httpGet, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../dataplane/runtime.js';
import type { MetricsRegistry } from '../dataplane/observe/metrics.js';

export const STATUS_PORTS = { merged: 15020, readiness: 15021, prometheus: 15090 } as const;

export interface StatusOptions {
  readonly host: string;
  /** Port overrides (tests); 0 = ephemeral. */
  readonly ports?: Partial<Record<keyof typeof STATUS_PORTS, number>>;
  /** The app's own Prometheus endpoint (Istio: prometheus.io/port and /path), merged on 15020. */
  readonly appMetricsUrl?: string;
}

export interface StatusServers {
  readonly ports: Record<keyof typeof STATUS_PORTS, number>;
  close(): Promise<void>;
}

const PROM = 'text/plain; version=0.0.4; charset=utf-8';
const APP_METRICS_TIMEOUT_MS = 2000;
const APP_METRICS_MAX_BYTES = 8 * 1024 * 1024;

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function appMetrics(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: APP_METRICS_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > APP_METRICS_MAX_BYTES) req.destroy();
      });
      res.on('end', () => resolve(res.statusCode === 200 ? body : `# app metrics ${url}: HTTP ${res.statusCode}\n`));
      res.on('error', () => resolve(`# app metrics ${url}: read failed\n`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`# app metrics ${url}: ${e.message}\n`));
  });
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export async function startStatusServers(opts: StatusOptions, deps: { readonly runtime: Runtime; readonly metrics: MetricsRegistry }): Promise<StatusServers> {
  const ready = (res: ServerResponse): void => {
    if (deps.runtime.ready) send(res, 200, 'LIVE\n');
    else send(res, 503, deps.runtime.current ? 'DRAINING\n' : 'PRE_INITIALIZING\n');
  };
  const route = (kind: keyof typeof STATUS_PORTS) => (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://status').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'read-only\n');
    if (path === '/healthz/ready' && kind !== 'prometheus') return ready(res);
    if (path === '/stats/prometheus' && kind === 'prometheus') return send(res, 200, deps.metrics.render(), PROM);
    if (path === '/stats/prometheus' && kind === 'merged') {
      const own = deps.metrics.render();
      if (opts.appMetricsUrl === undefined) return send(res, 200, own, PROM);
      void appMetrics(opts.appMetricsUrl).then((app) => send(res, 200, own + app, PROM));
      return;
    }
    send(res, 404, 'not found\n');
  };
  const servers: Server[] = [];
  const ports = { merged: 0, readiness: 0, prometheus: 0 };
  try {
    for (const kind of ['readiness', 'prometheus', 'merged'] as const) {
      const s = createServer(route(kind));
      servers.push(s);
      ports[kind] = await listen(s, opts.host, opts.ports?.[kind] ?? STATUS_PORTS[kind]);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return {
    ports,
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}
