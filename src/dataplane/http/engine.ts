/**
 * The HTTP engine: the HttpConnectionHandler the runtime hands `http` filter chains to
 * (dataplane/context.ts). One engine per Runtime; it owns what outlives a connection: the upstream
 * pool, the sweeper (all HTTP timeouts), the metric children, the set of live sessions (drain).
 *
 *   httpEngine(options)      -> HttpConnectionHandlerFactory (tests pass short timeouts here)
 *   createHttpHandler        the factory with default options (what `tollgate run` uses)
 */
import type { DataPlaneServices, DownstreamConnection, HttpConnectionHandler, HttpConnectionHandlerFactory } from '../context.js';
import type { ExplicitProxy, HttpConnectionManager } from '../../snapshot/types.js';
import type { CompiledSnapshot } from '../route/compile.js';
import { HttpSession } from './connection-manager.js';
import { compileHttpChains, FilterSharedState, HTTP_CHAINS } from './filter-chain.js';
import { HttpMetrics } from './http-metrics.js';
import { resolveOptions, type HttpEngineOptions, type ResolvedHttpOptions } from './options.js';
import type { EngineContext, EngineSession } from './stream-api.js';
import { Sweeper } from '../sweeper.js';
import { UpstreamPool } from './upstream-pool.js';

export class HttpEngine implements HttpConnectionHandler, EngineContext {
  readonly opts: ResolvedHttpOptions;
  readonly sweeper = new Sweeper();
  readonly pool: UpstreamPool;
  readonly metrics: HttpMetrics;
  readonly sessions = new Set<EngineSession>();
  /** What filters keep across snapshots (token buckets, mirror accounting), per filter. */
  readonly filterShared: FilterSharedState;
  draining = false;

  constructor(readonly services: DataPlaneServices, options: HttpEngineOptions = {}) {
    this.opts = resolveOptions(options, services.limits.requestHeadTimeoutMs);
    this.filterShared = new FilterSharedState(options.clock);
    this.metrics = new HttpMetrics(services.metrics);
    this.pool = new UpstreamPool(services.clusters, this.sweeper, this.opts.upstreamIdleTimeoutMs, this.opts.maxIdlePerUpstream, this.metrics.pool);
  }

  /** Compiles the HTTP filter chains of a snapshot being applied (a throw rejects it). */
  compile(snap: CompiledSnapshot): void {
    snap.attach(HTTP_CHAINS, compileHttpChains(snap, this.filterShared));
  }

  handle(conn: DownstreamConnection, filter: HttpConnectionManager): void {
    try {
      new HttpSession(this, this.filterShared, conn, filter);
    } catch (e) {
      // Never throw into the listener: log and drop the connection.
      this.services.logger.error('http session failed to start', { error: String(e) });
      conn.socket.destroy();
    }
  }

  /**
   * Absolute-form requests on an explicit-proxy listener (the CONNECT code parsed a non-CONNECT head
   * and unshifted its bytes): an HttpSession whose router is the ExplicitProxyRouter (proxy-router.ts)
   * — registry / ACL decision per request, then the normal filter chain and router. Keep-alive; a later CONNECT on
   * the same connection goes back to the CONNECT code.
   */
  handleExplicitProxy(conn: DownstreamConnection, filter: ExplicitProxy): void {
    try {
      new HttpSession(this, this.filterShared, conn, { type: 'http', statPrefix: filter.statPrefix, routeConfigName: '', accessLog: true }, filter);
    } catch (e) {
      this.services.logger.error('http session failed to start', { error: String(e) });
      conn.socket.destroy();
    }
  }

  drain(): void {
    this.draining = true;
    for (const s of this.sessions) s.drain();
    this.pool.drain();
  }

  register(s: EngineSession): void {
    this.sessions.add(s);
    this.sweeper.add(s);
  }

  unregister(s: EngineSession): void {
    this.sessions.delete(s);
    this.sweeper.delete(s);
  }
}

export function httpEngine(options: HttpEngineOptions = {}): HttpConnectionHandlerFactory {
  return (services) => new HttpEngine(services, options);
}

/** The engine with default options. */
export const createHttpHandler: HttpConnectionHandlerFactory = httpEngine();
