/**
 * What a downstream connection routes with: its RouterContext and HTTP filter chain, both on the
 * same snapshot. Shared by the HTTP/1.1 and HTTP/2 connection managers so every request, whatever
 * its codec, is decided by the same code.
 *
 * Each request routes on the listener's current snapshot (`refresh`), so a VirtualService edit
 * reaches keep-alive connections at their next request. Route table and clusters always come from
 * the same snapshot; if the new one no longer has this connection's route table, the connection
 * keeps its old snapshot until it closes.
 */
import { authzConnectionOf, type AuthzConnection } from '../authz/apply.js';
import type { DownstreamConnection } from '../context.js';
import type { ExplicitProxy, HttpConnectionManager } from '../../snapshot/types.js';
import { ExplicitProxyRouter } from '../route/explicit-proxy-route.js';
import { RouterContext, type Decision } from '../route/http-route.js';
import { chainOf, type CompiledFilterChain, type FilterPlan, type FilterSharedState } from './filter-chain.js';
import type { RequestHead } from './head.js';
import type { ResolvedHttpOptions } from './options.js';
import type { DataPlaneServices } from '../context.js';

export class RouteBinding {
  router: RouterContext;
  private chain: CompiledFilterChain;
  /** What AuthorizationPolicy sees of this connection (the rbac filter reads it). */
  readonly authz: AuthzConnection;

  constructor(
    private readonly conn: DownstreamConnection,
    private readonly filter: HttpConnectionManager,
    private readonly filterShared: FilterSharedState,
    services: DataPlaneServices,
    opts: ResolvedHttpOptions,
    tls: boolean,
    sourceNamespace: string | undefined,
    proxy?: ExplicitProxy,
  ) {
    this.router =
      proxy === undefined
        ? new RouterContext(conn.snapshot, conn.snapshot.routeTables.get(filter.routeConfigName), conn.listenerPort, tls, opts.encodedSlash, Math.random, sourceNamespace)
        : new ExplicitProxyRouter(conn.snapshot, proxy, conn.listener.listener.name, conn.chain.name, services.clusters.dns, conn.listenerPort, tls, opts.encodedSlash, Math.random, sourceNamespace);
    this.chain = chainOf(conn.snapshot, proxy ?? filter, filterShared);
    this.authz = authzConnectionOf(conn);
  }

  /** One request's route decision on the current snapshot; the filters of its route act on it. */
  decide(d: Decision, head: RequestHead): void {
    this.refresh();
    this.router.route(d, head);
  }

  refresh(): void {
    const snap = this.conn.currentSnapshot();
    if (snap === this.router.snapshot) return;
    const r = this.router.rebind(snap, this.filter.routeConfigName);
    if (r === undefined) return;
    this.router = r;
    if (r instanceof ExplicitProxyRouter) this.chain = chainOf(snap, r.proxy, this.filterShared);
    else {
      const f = snap.listeners.get(this.conn.listener.listener.name)?.listener;
      const hcm = f === undefined ? undefined : [...f.filterChains, ...(f.defaultFilterChain ? [f.defaultFilterChain] : [])].find((c) => c.name === this.conn.chain.name)?.filter;
      this.chain = chainOf(snap, hcm !== undefined && hcm.type === 'http' ? hcm : this.filter, this.filterShared);
    }
  }

  readonly planOf = (d: Decision): FilterPlan => this.chain.plan(d.route);
}
