/**
 * The HTTP filter contract (Envoy's http_filters, Pingora's optional phases). A listener runs an
 * ordered list of filters (snapshot `HttpConnectionManager.httpFilters`); the last one is the
 * router. Every phase is optional: a filter implements the ones it needs, and the chain compiled
 * for a route lists only the filters that have something to do there, per phase (filter-chain.ts),
 * so a phase no filter uses costs nothing.
 *
 * Phases (synchronous; no promise or closure per request):
 *   onRequestHeaders   after routing; CONTINUE, or STOP (after sendLocalReply, or to resume later
 *                      with continueDecoding()). The router's runs last and starts the upstream.
 *   onRequestBody      each body chunk, then once with endStream (empty chunk) when complete
 *   onUpstreamRequest  the router built the upstream request head ("upstream selected")
 *   onResponseHeaders  before the response head goes downstream (upstream response or local reply)
 *   onResponseBody     each response body chunk (read only)
 *   onLog              the request ended; its StreamInfo is final
 *
 * Config comes in two layers, both compiled when the snapshot is applied (a throw rejects it):
 * `compile(raw)` for the listener's entry, `forRoute(config, route, vhost)` for each route (and
 * once with no route) — the per-route value every phase receives; undefined leaves the filter out
 * of that route's chain. Per-route settings come from `typedPerFilterConfig[name]` (route over
 * virtual host) or, for Istio's own route fields (fault, mirror, headers), from the route itself.
 */
import type { Route, VirtualHost } from '../../snapshot/types.js';
import type { StreamCallbacks, UpstreamRequestHead } from './stream-api.js';

export const CONTINUE = 0;
export const STOP = 1;
export type FilterStatus = typeof CONTINUE | typeof STOP;

/** The response head as response filters see it (add fields with StreamCallbacks.addResponseHeader). */
export interface ResponseHeaders {
  readonly status: number;
  /** Flat [name, value, ...] as received from upstream (a local reply: its extra fields). */
  readonly headers: readonly string[];
  /** A reply the proxy generated (denial, redirect, error), not the upstream's. */
  readonly local: boolean;
}

/** One filter of one compiled chain. `R` is its per-route config. Stateless: per-request state goes in StreamCallbacks.setState(slot). */
export interface HttpFilter<R = unknown> {
  onRequestHeaders?(s: StreamCallbacks, route: R): FilterStatus;
  onRequestBody?(s: StreamCallbacks, chunk: Buffer, endStream: boolean, route: R): void;
  onUpstreamRequest?(s: StreamCallbacks, up: UpstreamRequestHead, route: R): void;
  onResponseHeaders?(s: StreamCallbacks, head: ResponseHeaders, route: R): void;
  onResponseBody?(s: StreamCallbacks, chunk: Buffer, route: R): void;
  /** The request ended: `s.info` is final (read only). */
  onLog?(s: StreamCallbacks, route: R): void;
}

/** What a filter's create() gets besides its config. */
export interface FilterContext<S> {
  /** The filter's position in the chain: its per-request state slot. */
  readonly slot: number;
  /** State that outlives snapshots (token buckets...), one per engine and filter name. */
  readonly shared: S;
}

/** A registry entry (filters/registry.ts). C: listener config, R: per-route config, S: shared state. */
export interface HttpFilterFactory<C = unknown, R = unknown, S = unknown> {
  readonly name: string;
  /** Listener-level config (HttpFilterConfig.config, possibly undefined); throws when invalid. */
  compile(raw: unknown): C;
  /** Per-route config; undefined: the filter does nothing on this route. `route` undefined: requests no route matched. Throws when invalid. */
  forRoute(config: C, route: Route | undefined, vhost: VirtualHost | undefined): R | undefined;
  /** State shared by every chain of one engine (created once); `now` is the engine's clock in ms. */
  shared?(now: () => number): S;
  create(config: C, ctx: FilterContext<S>): HttpFilter<R>;
  /** One line for `trace`: what this filter does on a route (undefined: nothing to say). */
  explain?(route: R): string | undefined;
}

/** Per-route (or vhost) setting of a filter, route over vhost. */
export function perFilterConfig(name: string, route: Route | undefined, vhost: VirtualHost | undefined): unknown {
  return route?.typedPerFilterConfig?.[name] ?? vhost?.typedPerFilterConfig?.[name];
}
