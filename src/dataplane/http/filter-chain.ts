/**
 * Compiles a listener's `httpFilters` once per snapshot, when it is applied: every filter's config,
 * and for every route of the listener's route table a FilterPlan — per phase, only the filters that
 * act on that route, with their per-route config. A request looks its plan up once (one Map get)
 * and runs plain arrays; a phase no filter uses is an empty array.
 *
 * Errors (unknown filter, router not last, invalid config) throw: the snapshot is rejected, the
 * process exits at start-up or the control plane / --watch keeps the previous one.
 */
import type { HttpConnectionManager, HttpFilterConfig, NetworkFilter, Route, RouteConfig, VirtualHost } from '../../snapshot/types.js';
import { DEFAULT_HTTP_FILTERS } from '../../snapshot/types.js';
import { SnapshotPart, type CompiledSnapshot } from '../route/compile.js';
import type { HttpFilter, HttpFilterFactory } from './filter.js';
import { FILTER_REGISTRY } from './filters/registry.js';

export interface BoundFilter {
  readonly filter: HttpFilter;
  /** The filter's per-route config (what forRoute returned). */
  readonly route: unknown;
  readonly slot: number;
}

/** The chain one route runs, by phase. */
export interface FilterPlan {
  readonly requestHeaders: readonly BoundFilter[];
  readonly requestBody: readonly BoundFilter[];
  readonly upstreamRequest: readonly BoundFilter[];
  readonly responseHeaders: readonly BoundFilter[];
  readonly responseBody: readonly BoundFilter[];
  readonly log: readonly BoundFilter[];
  /** Filters in the chain (size of the per-request state array). */
  readonly slots: number;
  /** Filter names active on this route, in order (trace, admin). */
  readonly names: readonly string[];
  /** The active filters' factories with their per-route config, in order (explainPlan). */
  readonly active: readonly ActiveFilter[];
}

export interface ActiveFilter {
  readonly factory: HttpFilterFactory;
  /** What forRoute returned: the config every phase of this route receives. */
  readonly route: unknown;
}

/** One filter's answer to "what would you do on this route" (trace). */
export interface FilterExplanation {
  readonly filter: string;
  readonly text: string;
}

/**
 * What the filters of a route's plan say they do, in chain order: each factory's explain() on the
 * very per-route config the data plane runs that route with, so trace cannot drift from it.
 */
export function explainPlan(plan: FilterPlan): FilterExplanation[] {
  const out: FilterExplanation[] = [];
  for (const a of plan.active) {
    const text = a.factory.explain?.(a.route);
    if (text !== undefined && text !== '') out.push({ filter: a.factory.name, text });
  }
  return out;
}

interface Instance {
  readonly factory: HttpFilterFactory;
  readonly config: unknown;
  readonly filter: HttpFilter;
}

export class CompiledFilterChain {
  private readonly plans = new Map<Route, FilterPlan>();
  /** Requests no route matched (and explicit-proxy requests, which have none). */
  readonly noRoute: FilterPlan;

  private readonly vhostOf = new Map<Route, VirtualHost>();

  constructor(
    private readonly instances: readonly Instance[],
    table: RouteConfig | undefined,
  ) {
    this.noRoute = this.build(undefined, undefined);
    // Every route's plan is built now, so a bad per-route config rejects the snapshot; only the
    // plans of routes that serve requests are kept (a registry of 10,000 hosts would otherwise
    // hold 10,000 plans, about 1 KB each, most never used).
    if (table !== undefined) {
      for (const vh of table.virtualHosts) {
        for (const r of vh.routes) {
          this.build(r, vh);
          this.vhostOf.set(r, vh);
        }
      }
    }
  }

  /** The plan of a routed request (a route of this listener's table), or the no-route plan. */
  plan(route: Route | undefined): FilterPlan {
    if (route === undefined) return this.noRoute;
    let p = this.plans.get(route);
    if (p === undefined) {
      // First request on this route (or a route of another table, which the generator never makes).
      p = this.build(route, this.vhostOf.get(route));
      this.plans.set(route, p);
    }
    return p;
  }

  get filterNames(): readonly string[] {
    return this.instances.map((i) => i.factory.name);
  }

  private build(route: Route | undefined, vhost: VirtualHost | undefined): FilterPlan {
    const plan = { requestHeaders: [] as BoundFilter[], requestBody: [] as BoundFilter[], upstreamRequest: [] as BoundFilter[], responseHeaders: [] as BoundFilter[], responseBody: [] as BoundFilter[], log: [] as BoundFilter[], slots: this.instances.length, names: [] as string[], active: [] as ActiveFilter[] };
    this.instances.forEach((inst, slot) => {
      let rc: unknown;
      try {
        rc = inst.factory.forRoute(inst.config, route, vhost);
      } catch (e) {
        throw new Error(`http filter ${inst.factory.name}, route ${route?.name ?? '(none)'}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (rc === undefined) return;
      const b: BoundFilter = { filter: inst.filter, route: rc, slot };
      const f = inst.filter;
      plan.names.push(inst.factory.name);
      plan.active.push({ factory: inst.factory, route: rc });
      if (f.onRequestHeaders) plan.requestHeaders.push(b);
      if (f.onRequestBody) plan.requestBody.push(b);
      if (f.onUpstreamRequest) plan.upstreamRequest.push(b);
      if (f.onResponseHeaders) plan.responseHeaders.push(b);
      if (f.onResponseBody) plan.responseBody.push(b);
      if (f.onLog) plan.log.push(b);
    });
    return plan;
  }
}

/** State that outlives snapshots, one per engine and filter (token buckets, mirror accounting). */
export class FilterSharedState {
  private readonly byName = new Map<string, unknown>();

  /** `now`: the clock time-based state (token buckets) reads; tests pass a manual one. */
  constructor(private readonly now: () => number = performance.now.bind(performance)) {}

  of(f: HttpFilterFactory): unknown {
    if (!this.byName.has(f.name)) this.byName.set(f.name, f.shared?.(this.now));
    return this.byName.get(f.name);
  }
}

/** Compiled chains of one snapshot, by the network filter object (HTTP connection manager or explicit proxy). */
export type HttpChains = ReadonlyMap<NetworkFilter, CompiledFilterChain>;
export const HTTP_CHAINS = new SnapshotPart<HttpChains>('http filter chains');

/** Compiles a filter list (throws on an unknown name, a misplaced router or an invalid config). */
export function compileFilterChain(list: readonly HttpFilterConfig[], table: RouteConfig | undefined, shared: FilterSharedState): CompiledFilterChain {
  if (list.length === 0 || list[list.length - 1]!.name !== 'router') throw new Error(`http filters [${list.map((f) => f.name).join(', ')}]: the last filter must be router`);
  const instances: Instance[] = list.map((entry, slot) => {
    const factory = FILTER_REGISTRY.get(entry.name);
    if (factory === undefined) throw new Error(`unknown http filter "${entry.name}" (known: ${[...FILTER_REGISTRY.keys()].join(', ')})`);
    if (entry.name === 'router' && slot !== list.length - 1) throw new Error('http filter router must be the last one');
    let config: unknown;
    try {
      config = factory.compile(entry.config);
    } catch (e) {
      throw new Error(`http filter ${entry.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return { factory, config, filter: factory.create(config, { slot, shared: shared.of(factory) }) };
  });
  return new CompiledFilterChain(instances, table);
}

/** Every HTTP chain of a snapshot, compiled; attach the result with HTTP_CHAINS. */
export function compileHttpChains(snap: CompiledSnapshot, shared: FilterSharedState): Map<NetworkFilter, CompiledFilterChain> {
  const out = new Map<NetworkFilter, CompiledFilterChain>();
  // Chains that share a filter list and a route table share the compiled chain.
  const memo = new Map<readonly HttpFilterConfig[], Map<string, CompiledFilterChain>>();
  const compileFor = (list: readonly HttpFilterConfig[], tableName: string): CompiledFilterChain => {
    let byTable = memo.get(list);
    if (byTable === undefined) memo.set(list, (byTable = new Map()));
    let c = byTable.get(tableName);
    if (c === undefined) {
      c = compileFilterChain(list, snap.routeTables.get(tableName)?.config, shared);
      byTable.set(tableName, c);
    }
    return c;
  };
  for (const cl of snap.listeners.values()) {
    const l = cl.listener;
    for (const chain of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      const f = chain.filter;
      try {
        if (f.type === 'http') out.set(f, compileFor(f.httpFilters ?? DEFAULT_HTTP_FILTERS, f.routeConfigName));
        else if (f.type === 'explicit_proxy') out.set(f, compileFor(f.httpFilters ?? DEFAULT_HTTP_FILTERS, ''));
      } catch (e) {
        throw new Error(`listener ${l.name}, filter chain ${chain.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return out;
}

/** The chain of a connection manager that is not part of a compiled snapshot (compiled now). */
export function chainOf(snap: CompiledSnapshot, filter: HttpConnectionManager | NetworkFilter, shared: FilterSharedState): CompiledFilterChain {
  const c = snap.part(HTTP_CHAINS)?.get(filter);
  if (c !== undefined) return c;
  const list = filter.type === 'http' || filter.type === 'explicit_proxy' ? (filter.httpFilters ?? DEFAULT_HTTP_FILTERS) : DEFAULT_HTTP_FILTERS;
  return compileFilterChain(list, filter.type === 'http' ? snap.routeTables.get(filter.routeConfigName)?.config : undefined, shared);
}
