/**
 * The router of explicit-proxy connections (`--explicit-proxy`, Gateway annotation
 * `tollgate.io/explicit-proxy`, egress router http-proxy mode) once they carry absolute-form
 * requests (`GET http://host[:port]/path HTTP/1.1`, what `curl -x` and HTTP_PROXY clients send).
 * No route table: the explicit_proxy filter decides, with the same pure functions as CONNECT
 * (route/select.ts), on ONE authority — the target's (RFC 9112 §3.2.2; a disagreeing Host is
 * ignored for the decision and replaced upstream):
 *
 *  - not absolute-form (origin-form `GET /x`, `OPTIONS *`) -> 400 proxy_not_absolute_form;
 *  - registry mode (no `acl`): selectExplicitProxyHttpTarget(host, port) — a ServiceEntry must
 *    declare host:port (port: the target's, else 80/443 by scheme) -> else 403 proxy_not_in_registry;
 *    `https://` targets and TLS/HTTPS registry ports need TLS origination on the cluster
 *    (403 proxy_tls_not_originated); the registry cluster is then used as a route would use it;
 *  - ACL mode (egress router http-proxy): a name is resolved (DNS cache; the decision waits on
 *    `Decision.pending` when it is not cached), aclDecide() first match -> 403 acl_denied /
 *    acl_no_match; forwarded over an ad-hoc ORIGINAL_DST cluster to the checked address
 *    (aclCluster), IP/CIDR allow entries exempt that address from the SSRF guard.
 *
 * Forwarding is the engine's normal machinery (Exchange): pool, source address (filter's
 * sourceAddress = EGRESS_SOURCE), SSRF and self-connect guards, access log, istio_requests_total.
 * The upstream request is origin-form with Host = the target's canonical authority. The path is
 * normalised exactly as on route-table listeners (normalize.ts). CONNECT never reaches route(): the
 * session hands it back to the explicit proxy's CONNECT code.
 */
import type { ExplicitProxy } from '../../snapshot/types.js';
import type { CompiledSnapshot } from './compile.js';
import { aclAllowsAddress, aclCluster, aclDecide, selectExplicitProxyHttpTarget } from './select.js';
import type { DnsCache, DnsResult } from '../upstream/dns.js';
import { normalizePath, type EncodedSlashPolicy } from './normalize.js';
import { Decision, ENCODED_SLASH_DETAIL, RouterContext, type ForwardAction, type RequestInput } from './http-route.js';

/** Forward action of every explicit-proxy request: no retries, no rewrites, no timeout (Envoy's dynamic forward proxy defaults). */
const PROXY_ACTION: ForwardAction = { type: 'forward', clusters: [] };

export class ExplicitProxyRouter extends RouterContext {
  constructor(
    snapshot: CompiledSnapshot,
    readonly proxy: ExplicitProxy,
    /** Listener and chain names: where rebind() finds this filter in a newer snapshot. */
    readonly listenerName: string,
    readonly chainName: string,
    readonly dns: DnsCache,
    listenerPort: number,
    tls: boolean,
    encodedSlash: EncodedSlashPolicy,
    random: () => number,
    sourceNamespace: string | undefined,
  ) {
    super(snapshot, undefined, listenerPort, tls, encodedSlash, random, sourceNamespace);
  }

  /** The filter as the newer snapshot has it (an edited allow/deny list applies to the next request). */
  override rebind(snap: CompiledSnapshot): RouterContext | undefined {
    const l = snap.listeners.get(this.listenerName)?.listener;
    if (l === undefined) return undefined;
    const chain = l.filterChains.find((c) => c.name === this.chainName) ?? (l.defaultFilterChain?.name === this.chainName ? l.defaultFilterChain : undefined);
    if (chain === undefined || chain.filter.type !== 'explicit_proxy') return undefined;
    return new ExplicitProxyRouter(snap, chain.filter, this.listenerName, this.chainName, this.dns, this.listenerPort, this.tls, this.encodedSlash, this.random, this.sourceNamespace);
  }

  override route(d: Decision, head: RequestInput): void {
    this.head = head;
    this.method = head.method;
    d.head = head;
    d.method = head.method;
    if (head.targetForm !== 'absolute' || head.authority === undefined) {
      d.reply(400, 'DPE', 'proxy_not_absolute_form', `${head.method} ${head.target}: an explicit proxy takes absolute-form requests (http://host/path) and CONNECT`);
      return;
    }
    const bad = this.setAuthority(head.authority);
    if (bad !== undefined) {
      d.reply(400, 'DPE', 'invalid_host', `authority ${JSON.stringify(head.authority)}: ${bad}`);
      return;
    }
    const host = this.host;
    d.host = host;
    d.authority = this.authority;
    const scheme = head.scheme ?? 'http';
    this.scheme = scheme;
    d.scheme = scheme;
    const raw = head.path;
    const q = raw.indexOf('?');
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    const np = normalizePath(rawPath, this.pathLevel, this.encodedSlash);
    if (np === null) {
      d.reply(400, 'DPE', 'encoded_slash_in_path', ENCODED_SLASH_DETAIL);
      return;
    }
    this.path = np;
    d.path = np;
    this.query = q < 0 ? '' : raw.slice(q + 1);
    d.target = np === rawPath ? raw : q < 0 ? np : np + raw.slice(q);
    const port = this.explicitPort !== 0 ? this.explicitPort : scheme === 'https' ? 443 : 80;
    d.requestedPort = port;
    d.upstreamHost = this.canonicalAuthority;
    const f = this.proxy;
    d.routeName = f.statPrefix;
    if (f.acl === undefined) {
      const dec = selectExplicitProxyHttpTarget(this.snapshot, scheme, host, port, f.reportOnly === true ? { sourceAddress: f.sourceAddress } : undefined);
      if (!dec.allowed) {
        d.reply(dec.status, dec.flag ?? 'NR', dec.reason, dec.why);
        return;
      }
      const cluster = dec.cluster!;
      const wouldDeny = dec.wouldDeny !== undefined;
      this.forward(d, cluster.name, { cluster: wouldDeny ? cluster : cluster.name, requestedHost: host, filterSourceAddress: f.sourceAddress, allowAddresses: undefined, ...(wouldDeny ? { wouldDeny } : {}) });
      d.cluster = cluster;
      return;
    }
    if (scheme === 'https') {
      d.reply(403, 'BLOCKED', 'proxy_tls_not_originated', `an https:// target needs TLS, and the http-proxy router does not originate it (use CONNECT)`);
      return;
    }
    if (this.lastIp !== undefined) {
      this.decideAcl(d, host, port, { ok: true, addresses: [host], ttlSec: 0, cached: true });
      return;
    }
    const cached = this.dns.peek(host, 'V4_ONLY');
    if (cached !== undefined) {
      this.decideAcl(d, host, port, { ok: true, addresses: cached, ttlSec: 0, cached: true });
      return;
    }
    d.pending = this.dns.resolve(host, 'V4_ONLY').then(
      (r) => this.decideAcl(d, host, port, r),
      (e: unknown) => this.decideAcl(d, host, port, { ok: false, code: 'ERROR', message: String(e) }),
    );
  }

  /** The IP literal of the last authority, if it was one (no DNS for it). */
  private get lastIp(): string | undefined {
    return isIpLiteral(this.host) ? this.host : undefined;
  }

  private decideAcl(d: Decision, host: string, port: number, r: DnsResult): void {
    const acl = this.proxy.acl!;
    if (!r.ok) {
      d.reply(502, 'DF', 'dns_resolution_failed', r.message);
      return;
    }
    const ip = r.addresses[0];
    const entry = aclDecide(acl, host, ip);
    if (entry === undefined) {
      d.reply(403, 'BLOCKED', 'acl_no_match', `${host} (${ip ?? 'no address'}) matches no EGRESS_HTTP_PROXY_DESTINATION entry`);
      return;
    }
    if (entry.deny) {
      d.reply(403, 'BLOCKED', 'acl_denied', `${host} (${ip ?? 'no address'}) denied by "!${entry.pattern}"`);
      return;
    }
    if (ip === undefined) {
      d.reply(502, 'DF', 'dns_resolution_failed', `${host} has no IPv4 address`);
      return;
    }
    const f = this.proxy;
    const cluster = aclCluster(host, port, f.sourceAddress);
    d.routeName = `acl:${entry.pattern}`;
    this.forward(d, cluster.name, { cluster, requestedHost: ip, filterSourceAddress: f.sourceAddress, allowAddresses: aclAllowsAddress(acl, ip) ? [ip] : undefined });
    d.cluster = cluster;
  }

  private forward(d: Decision, clusterName: string, proxy: Decision['proxy']): void {
    d.kind = 'forward';
    d.action = PROXY_ACTION;
    d.clusterName = clusterName;
    d.proxy = proxy;
  }
}

function isIpLiteral(h: string): boolean {
  // normalizeHost turned every IPv4 spelling into dotted-quad; IPv6 hosts contain ':'.
  return h.includes(':') || /^\d{1,3}(?:\.\d{1,3}){3}$/.test(h);
}
