/**
 * Admin API: read-only views over the running data plane, plus /logging. Bound to 127.0.0.1 unless
 * told otherwise. Uses node:http (not the data-plane codec): it is a local control surface, not a
 * proxy path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Runtime } from '../dataplane/runtime.js';
import type { MetricsRegistry } from '../dataplane/observe/metrics.js';
import { isLogLevel, type Logger } from '../shared/logger.js';
import { redactSnapshot } from '../snapshot/secrets.js';
import { dashboardHtml } from './dashboard.js';

/**
 * Where the admin listens: a TCP address, or a unix socket (a --workers worker's private admin,
 * which only its primary talks to: no TCP port exists that a route could reach).
 */
export type AdminOptions = { readonly host: string; readonly port: number } | { readonly socketPath: string };

export interface AdminDeps {
  readonly runtime: Runtime;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** Floating source addresses: held or not, by whom, since when, the last failover. */
  readonly sourceAddresses?: () => unknown;
}

export interface AdminServer {
  readonly address: AdminOptions;
  close(): Promise<void>;
}

/** The admin's TCP port; undefined for a unix-socket admin. */
export function adminPort(a: AdminServer): number | undefined {
  return 'port' in a.address ? a.address.port : undefined;
}

/** host:port or the socket path, for logs. */
export function adminText(a: AdminServer): string {
  return 'port' in a.address ? `${a.address.host}:${a.address.port}` : a.address.socketPath;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, v: unknown): void {
  send(res, status, JSON.stringify(v, null, 2) + '\n', 'application/json');
}

export function startAdmin(opts: AdminOptions, deps: AdminDeps): Promise<AdminServer> {
  const { runtime, metrics, logger } = deps;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    try {
      switch (url.pathname) {
        case '/ready':
          // Still ready with warnings (missing source addresses fail closed per connection): the detail says what is wrong.
          if (runtime.ready) send(res, 200, `LIVE\n${runtime.warnings.map((w) => `warning: ${w}\n`).join('')}`);
          else send(res, 503, runtime.current ? 'DRAINING\n' : 'PRE_INITIALIZING\n');
          return;
        case '/healthz':
          send(res, 200, 'ok\n');
          return;
        case '/source_addresses':
          json(res, 200, deps.sourceAddresses?.() ?? []);
          return;
        case '/stats/prometheus':
          send(res, 200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
          return;
        case '/config_dump': {
          const c = runtime.current;
          if (!c) {
            json(res, 503, { error: 'no snapshot applied yet' });
            return;
          }
          json(res, 200, { snapshot: redactSnapshot(c.snapshot), bound: runtime.listeners() }); // secret values never leave the process
          return;
        }
        case '/clusters':
          json(res, 200, { clusters: runtime.services.clusters.describe(), dns: { servers: runtime.services.clusters.dns.servers, cache: runtime.services.clusters.dns.entries() } });
          return;
        case '/observed': {
          // Report-only evidence for `tollgate suggest --admin` and the dashboard.
          const c = runtime.current;
          json(res, 200, { proxy: c?.snapshot.proxy ?? null, outboundMode: c?.snapshot.policy.outboundMode ?? 'enforce', observed: runtime.services.metrics.wouldDeny.snapshot() });
          return;
        }
        case '/listeners':
          json(res, 200, runtime.listeners());
          return;
        case '/logging': {
          const level = url.searchParams.get('level');
          if (level === null) {
            send(res, 200, `level: ${logger.level}\n`);
            return;
          }
          // A change of state takes POST: a GET can come from anything that can make the browser
          // or a crawler fetch a URL (Envoy's admin made the same change).
          if (method !== 'POST') {
            res.setHeader('allow', 'POST');
            send(res, 405, 'use POST /logging?level=debug|info|warn|error|off\n');
            return;
          }
          if (!isLogLevel(level)) {
            send(res, 400, `unknown level ${JSON.stringify(level)}; use debug, info, warn, error or off\n`);
            return;
          }
          logger.setLevel(level);
          send(res, 200, `level: ${level}\n`);
          return;
        }
        case '/':
          send(res, 200, dashboardHtml(), 'text/html; charset=utf-8');
          return;
        case '/status': {
          const c = runtime.current;
          json(res, 200, { proxy: c?.snapshot.proxy ?? null, version: c?.snapshot.version ?? null, ready: runtime.ready, outboundMode: c?.snapshot.policy.outboundMode ?? 'enforce', source: 'snapshot applied' });
          return;
        }
        case '/suggest': {
          // The ServiceEntry `tollgate suggest --admin` would write, for one observed host (or all).
          const host = url.searchParams.get('host');
          const port = Number(url.searchParams.get('port') ?? 0);
          const seen = runtime.services.metrics.wouldDeny.snapshot().filter((o) => o.port > 0 && (host === null || o.host === host) && (port === 0 || o.port === port));
          const ns = runtime.current?.snapshot.proxy.namespace ?? 'default';
          // The authoring code and its YAML writer are loaded on the first ask, not kept by every proxy.
          Promise.all([import('../author/suggest.js'), import('../author/render.js')]).then(
            ([{ suggest }, { renderYaml }]) => {
              const items = suggest(seen.map((o) => ({ host: o.host, port: o.port, protocol: o.protocol, count: o.count, firstSeen: o.firstSeen, lastSeen: o.lastSeen, callers: o.namespaces })), { namespace: ns, wildcardThreshold: 0 });
              send(res, 200, renderYaml(items), 'application/yaml; charset=utf-8');
            },
            (e: unknown) => send(res, 500, `admin error: ${e instanceof Error ? e.message : String(e)}\n`),
          );
          return;
        }
        case '/help':
          send(res, 200, ['/ (dashboard)', '/status', '/suggest?host=&port=', '/ready', '/healthz', '/stats/prometheus', '/config_dump', '/clusters', '/listeners', '/observed', '/logging?level='].join('\n') + '\n');
          return;
        default:
          send(res, 404, 'not found\n');
      }
    } catch (e) {
      send(res, 500, `admin error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  };
  const server: Server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: in a --workers worker, the admin must be this worker's own socket, not one shared
    // through the cluster primary like the data-plane listeners.
    const where = 'socketPath' in opts ? { path: opts.socketPath } : { host: opts.host, port: opts.port };
    server.listen({ ...where, exclusive: true }, () => {
      server.removeListener('error', reject);
      const a = server.address();
      resolve({
        address: 'socketPath' in opts ? opts : { host: opts.host, port: a && typeof a === 'object' ? a.port : opts.port },
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
