/** VirtualService `http` routes -> snapshot Routes (one per match clause, as Envoy needs them). */
import { localRateLimitOf } from '../../config/rate-limit.js';
import { parseDurationMs } from '../../config/schema/dsl.js';
import type { HttpMatch, HttpRoute, StringMatch } from '../../config/types.js';
import type { VirtualServiceModel } from '../../model/build.js';
import { resolveHost } from '../../model/selectors.js';
import { grpcStatusCode, httpStatusOfGrpc } from '../../shared/grpc-status.js';
import type { HeaderMutations, RetryPolicy, Route, RouteAction, RouteMatch, StringMatcher } from '../types.js';
import type { ClusterSet } from './clusters.js';
import { originOf } from './origin.js';

/**
 * Istio's default retry policy for HTTP routes that set none. One frozen instance shared by every
 * route that uses it: snapshots are immutable, and with 10k routes the copies add up.
 */
export const DEFAULT_RETRIES: RetryPolicy = Object.freeze({ attempts: 2, retryOn: Object.freeze(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']) });

export interface RouteContext {
  readonly vs: VirtualServiceModel;
  readonly clusters: ClusterSet;
  /** Listener port (for destination port defaulting and `match.port`). */
  readonly port: number;
  /** The gateway key (`ns/name`) or `mesh`, for `match.gateways`. */
  readonly gateway: string;
}

export function httpRoutesOf(ctx: RouteContext): Route[] {
  const out: Route[] = [];
  const http = ctx.vs.spec.http ?? [];
  // tollgate.io/local-rate-limit: one limit for every http route of the VirtualService.
  const rl = localRateLimitOf(ctx.vs.resource.annotations);
  const perFilter = rl !== undefined ? { local_ratelimit: { tokensPerFill: rl.tokensPerFill, fillIntervalMs: rl.fillIntervalMs, maxTokens: rl.maxTokens } } : undefined;
  http.forEach((r, i) => {
    const name = `${ctx.vs.key}:${r.name ?? i}`;
    const matches = r.match && r.match.length > 0 ? r.match : [undefined];
    let action: RouteAction | undefined;
    matches.forEach((m, mi) => {
      if (m?.port !== undefined && m.port !== ctx.port) return;
      if (m?.gateways && m.gateways.length > 0 && !m.gateways.some((g) => gatewayKey(g, ctx.vs.resource.namespace) === ctx.gateway)) return;
      action ??= actionOf(r, ctx);
      out.push({ name: matches.length > 1 ? `${name}#${m?.name ?? mi}` : name, match: matchOf(m), action, origin: originOf(ctx.vs.resource, ['spec', 'http', i]), ...(perFilter ? { typedPerFilterConfig: perFilter } : {}) });
    });
  });
  return out;
}

function gatewayKey(g: string, ns: string): string {
  return g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`;
}

function sm(m: StringMatch | undefined): StringMatcher | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { regex: m.regex };
  return undefined;
}

function matchOf(m: HttpMatch | undefined): RouteMatch {
  if (!m) return {};
  const headers = [
    ...Object.entries(m.headers ?? {}).map(([name, v]) => ({ name: name.toLowerCase(), match: sm(v) ?? {} })),
    ...Object.entries(m.withoutHeaders ?? {}).map(([name, v]) => ({ name: name.toLowerCase(), match: sm(v) ?? {}, invert: true })),
  ];
  const queryParams = Object.entries(m.queryParams ?? {}).map(([name, v]) => ({ name, match: sm(v) ?? {} }));
  const path = sm(m.uri);
  const method = sm(m.method);
  const authority = sm(m.authority);
  const scheme = sm(m.scheme);
  return {
    ...(path ? { path } : {}),
    ...(m.ignoreUriCase ? { ignoreCase: true } : {}),
    ...(method ? { method } : {}),
    ...(authority ? { authority } : {}),
    ...(scheme ? { scheme } : {}),
    ...(headers.length > 0 ? { headers } : {}),
    ...(queryParams.length > 0 ? { queryParams } : {}),
    ...(m.port !== undefined ? { port: m.port } : {}),
    ...(m.sourceNamespace ? { sourceNamespace: m.sourceNamespace } : {}),
    ...(m.sourceLabels ? { sourceLabels: m.sourceLabels } : {}),
  };
}

function percentOf(p: { value?: number } | undefined, legacy: number | undefined): number {
  return p?.value ?? legacy ?? 100;
}

function mutations(h: { set?: Record<string, string>; add?: Record<string, string>; remove?: readonly string[] } | undefined): HeaderMutations | undefined {
  if (!h) return undefined;
  return { ...(h.set ? { set: h.set } : {}), ...(h.add ? { add: h.add } : {}), ...(h.remove ? { remove: h.remove } : {}) };
}

function actionOf(r: HttpRoute, ctx: RouteContext): RouteAction {
  const ns = ctx.vs.resource.namespace;
  if (r.directResponse) return { type: 'direct', status: r.directResponse.status, body: r.directResponse.body?.string ?? '' };
  if (r.redirect) {
    const rd = r.redirect;
    return {
      type: 'redirect',
      status: rd.redirectCode ?? 301,
      ...(rd.scheme ? { scheme: rd.scheme } : {}),
      ...(rd.authority ? { authority: rd.authority } : {}),
      ...(rd.uri ? { path: rd.uri } : {}),
      ...(rd.port ? { port: rd.port } : {}),
    };
  }
  const dests = r.route ?? [];
  const clusters = dests.map((d) => ({
    name: ctx.clusters.forDestination(resolveHost(d.destination.host, ns), d.destination.port?.number, d.destination.subset, ctx.port),
    weight: d.weight ?? (dests.length === 1 ? 100 : 0),
  }));
  const timeoutMs = r.timeout ? parseDurationMs(r.timeout) : undefined;
  const perTry = r.retries?.perTryTimeout ? parseDurationMs(r.retries.perTryTimeout) : undefined;
  const retries = r.retries
    ? { attempts: r.retries.attempts ?? 0, retryOn: (r.retries.retryOn ?? 'connect-failure,refused-stream,5xx').split(',').map((s) => s.trim()).filter(Boolean), ...(perTry !== undefined ? { perTryTimeoutMs: perTry } : {}) }
    : DEFAULT_RETRIES;
  const requestHeaders = mutations(r.headers?.request);
  const responseHeaders = mutations(r.headers?.response);
  const mirror = r.mirror ? { cluster: ctx.clusters.forDestination(resolveHost(r.mirror.host, ns), r.mirror.port?.number, r.mirror.subset, ctx.port), percent: r.mirrorPercentage?.value ?? 100 } : undefined;
  const delay = r.fault?.delay?.fixedDelay ? { ms: parseDurationMs(r.fault.delay.fixedDelay) ?? 0, percent: percentOf(r.fault.delay.percentage, r.fault.delay.percent) } : undefined;
  const abort = abortOf(r.fault?.abort);
  const pathRewrite = r.rewrite?.uri !== undefined ? { prefix: r.rewrite.uri } : undefined;
  return {
    type: 'forward',
    clusters,
    ...(r.rewrite?.authority ? { hostRewrite: r.rewrite.authority } : {}),
    ...(pathRewrite ? { pathRewrite } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    retries,
    ...(requestHeaders ? { requestHeaders } : {}),
    ...(responseHeaders ? { responseHeaders } : {}),
    ...(mirror ? { mirror } : {}),
    ...(delay || abort ? { fault: { ...(delay ? { delay } : {}), ...(abort ? { abort } : {}) } } : {}),
  };
}

/** A fault abort by HTTP status, or by gRPC status (HTTP clients then get its HTTP equivalent). */
function abortOf(a: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: { readonly value?: number } } | undefined): { status: number; percent: number; grpcStatus?: number } | undefined {
  if (a === undefined) return undefined;
  const grpc = a.grpcStatus !== undefined ? grpcStatusCode(a.grpcStatus) : undefined;
  const status = a.httpStatus ?? (grpc !== undefined ? httpStatusOfGrpc(grpc) : undefined);
  if (status === undefined) return undefined;
  return { status, percent: percentOf(a.percentage, undefined), ...(grpc !== undefined ? { grpcStatus: grpc } : {}) };
}
