/**
 * AuthorizationPolicy evaluation, as Istio's RBAC filters decide: CUSTOM, then DENY, then ALLOW;
 * when any ALLOW policy applies to the workload, a request that matches none of them is denied.
 * AUDIT policies only mark the request. Dry-run policies are evaluated like the rest (a shadow
 * verdict) and never change the outcome.
 *
 * Pure: the HTTP filter, the TCP proxy and `tollgate trace` call this same function.
 *
 * TCP connections carry no HTTP attributes. As Istio does, a rule that needs one (hosts, methods,
 * paths, requestPrincipals, request.* conditions) is dropped from an ALLOW policy (it can never
 * allow) and has that field ignored in a DENY or AUDIT policy (it denies more, never less).
 *
 * Peer identity (principals, namespaces, source.principal, source.namespace) is the SPIFFE ID of
 * the certificate the peer presented on mesh mTLS. On a plaintext connection it is absent, so
 * `principals`/`namespaces` never match and `notPrincipals`/`notNamespaces` always do (Istio's
 * behaviour for a plaintext peer).
 */
import { cidrContains, parseCidr, parseIp, type Ip } from '../../net/ip.js';
import type { AuthzCondition, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource } from '../../snapshot/types.js';

/** HTTP attributes of a request (absent on TCP connections). */
export interface AuthzHttp {
  /** Host as the router saw it (lower case, no port). */
  readonly host: string;
  /** Authority as sent (may carry a port). */
  readonly authority: string;
  readonly method: string;
  /** Path without the query, after the proxy's path normalisation. */
  readonly path: string;
  /** Value of a request header (lower-case name), undefined when absent. */
  readonly header: (name: string) => string | undefined;
}

export interface AuthzRequest {
  /** Address of the downstream peer (source.ip). */
  readonly sourceIp: string;
  /** Original client address (remote.ip); the peer address unless a trusted proxy said otherwise. */
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort: number;
  readonly sni?: string | null;
  readonly http?: AuthzHttp;
  /** Authenticated peer identity from mesh mTLS (`cluster.local/ns/a/sa/sleep`, `a`): absent on plaintext. */
  readonly sourcePrincipal?: string;
  readonly sourceNamespace?: string;
}

/** The policy and rule that decided, Envoy's "ns[...]-policy[...]-rule[N]" naming. */
export interface AuthzMatch {
  readonly policy: AuthzPolicy;
  readonly ruleIndex: number;
}

export interface AuthzVerdict {
  readonly allowed: boolean;
  /** The policy that denied (DENY/CUSTOM match) — absent when denied because no ALLOW policy matched. */
  readonly deniedBy?: AuthzMatch;
  /** The ALLOW policy and rule that allowed (absent when no ALLOW policy applies). */
  readonly allowedBy?: AuthzMatch;
  /** What dry-run policies would have done: set only when they would have denied. */
  readonly dryRunDenied?: { readonly match?: AuthzMatch };
  /** AUDIT policies that matched. */
  readonly audited: readonly AuthzMatch[];
}

export const RBAC_DENIED_REASON = 'rbac_denied';
export const RBAC_DRY_RUN_REASON = 'rbac_dry_run_denied';
export const RBAC_DENIED_BODY = 'RBAC: access denied';

const NO_AUDIT: readonly AuthzMatch[] = [];
const ALLOW_ALL: AuthzVerdict = { allowed: true, audited: NO_AUDIT };

/** A snapshot's policy list split once into enforced and dry-run (the list is immutable snapshot data). */
const partitions = new WeakMap<readonly AuthzPolicy[], { readonly enforced: readonly AuthzPolicy[]; readonly dryRun: readonly AuthzPolicy[] }>();

function partition(policies: readonly AuthzPolicy[]): { readonly enforced: readonly AuthzPolicy[]; readonly dryRun: readonly AuthzPolicy[] } {
  let p = partitions.get(policies);
  if (p === undefined) {
    p = { enforced: policies.filter((x) => !x.dryRun), dryRun: policies.filter((x) => x.dryRun) };
    partitions.set(policies, p);
  }
  return p;
}

export function evaluateAuthz(policies: readonly AuthzPolicy[] | undefined, req: AuthzRequest): AuthzVerdict {
  if (policies === undefined || policies.length === 0) return ALLOW_ALL;
  const parts = partition(policies);
  const enforced = decide(parts.enforced, req);
  const shadow = parts.dryRun.length > 0 ? decide(parts.dryRun, req) : undefined;
  if (shadow === undefined || shadow.allowed) return enforced;
  return { ...enforced, dryRunDenied: shadow.deniedBy === undefined ? {} : { match: shadow.deniedBy } };
}

function decide(policies: readonly AuthzPolicy[], req: AuthzRequest): AuthzVerdict {
  let audited: AuthzMatch[] | undefined;
  for (const p of policies) {
    if (p.action !== 'AUDIT') continue;
    const i = matchingRule(p, req);
    if (i >= 0) (audited ??= []).push({ policy: p, ruleIndex: i });
  }
  return decideAccess(policies, req, audited ?? NO_AUDIT);
}

function decideAccess(policies: readonly AuthzPolicy[], req: AuthzRequest, audited: readonly AuthzMatch[]): AuthzVerdict {
  // CUSTOM needs an external authorizer Tollgate does not have: a matching request is denied (fail closed).
  for (const action of ['CUSTOM', 'DENY'] as const) {
    for (const p of policies) {
      if (p.action !== action) continue;
      const i = matchingRule(p, req);
      if (i >= 0) return { allowed: false, deniedBy: { policy: p, ruleIndex: i }, audited };
    }
  }
  let anyAllow = false;
  for (const p of policies) {
    if (p.action !== 'ALLOW') continue;
    anyAllow = true;
    const i = matchingRule(p, req);
    if (i >= 0) return { allowed: true, allowedBy: { policy: p, ruleIndex: i }, audited };
  }
  return anyAllow || audited !== NO_AUDIT ? { allowed: !anyAllow, audited } : ALLOW_ALL;
}

/** Index of the first rule of `p` that matches, -1 when none does. */
function matchingRule(p: AuthzPolicy, req: AuthzRequest): number {
  const rules = p.rules ?? [];
  const widen = p.action !== 'ALLOW';
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i]!, req, widen)) return i;
  return -1;
}

/**
 * A rule matches when some `from` entry, some `to` entry and every `when` condition match (an absent
 * section matches anything). `widen`: on TCP, HTTP-only fields are ignored instead of failing the rule.
 */
function ruleMatches(rule: AuthzRule, req: AuthzRequest, widen: boolean): boolean {
  const tcp = req.http === undefined;
  if (tcp && !widen && ruleNeedsHttp(rule)) return false;
  if (rule.from !== undefined && !rule.from.some((f) => sourceMatches(f, req))) return false;
  if (rule.to !== undefined && !rule.to.some((t) => operationMatches(t, req))) return false;
  return (rule.when ?? []).every((c) => conditionMatches(c, req));
}

export function ruleNeedsHttp(rule: AuthzRule): boolean {
  const op = (o: AuthzOperation): boolean => HTTP_OPERATION_FIELDS.some((k) => o[k] !== undefined);
  const src = (s: AuthzSource): boolean => s.requestPrincipals !== undefined || s.notRequestPrincipals !== undefined;
  return (rule.to ?? []).some(op) || (rule.from ?? []).some(src) || (rule.when ?? []).some((c) => isHttpKey(c.key));
}

const HTTP_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

function isHttpKey(key: string): boolean {
  return key.startsWith('request.');
}

function sourceMatches(s: AuthzSource, req: AuthzRequest): boolean {
  const remote = req.remoteIp ?? req.sourceIp;
  return (
    field(s.ipBlocks, s.notIpBlocks, (b) => ipInBlock(req.sourceIp, b)) &&
    field(s.remoteIpBlocks, s.notRemoteIpBlocks, (b) => ipInBlock(remote, b)) &&
    field(s.principals, s.notPrincipals, (v) => valueMatches(v, req.sourcePrincipal)) &&
    field(s.namespaces, s.notNamespaces, (v) => valueMatches(v, req.sourceNamespace)) &&
    // Request principals come from JWTs (RequestAuthentication), which Tollgate does not validate.
    (req.http === undefined || field(s.requestPrincipals, s.notRequestPrincipals, (v) => valueMatches(v, undefined)))
  );
}

function operationMatches(o: AuthzOperation, req: AuthzRequest): boolean {
  if (!field(o.ports, o.notPorts, (v) => v === String(req.destinationPort))) return false;
  const h = req.http;
  if (h === undefined) return true; // HTTP-only fields: see ruleMatches
  return (
    field(o.hosts, o.notHosts, (v) => hostMatches(v, h)) &&
    field(o.methods, o.notMethods, (v) => v === h.method) &&
    field(o.paths, o.notPaths, (v) => valueMatches(v, h.path))
  );
}

function conditionMatches(c: AuthzCondition, req: AuthzRequest): boolean {
  const test = conditionTest(c.key, req);
  if (test === undefined) return true; // an HTTP key on TCP: ignored (only DENY/AUDIT rules get here)
  return field(c.values, c.notValues, test);
}

/** How one value of condition `key` is tested against the request; undefined when the key needs HTTP and this is TCP. */
function conditionTest(key: string, req: AuthzRequest): ((v: string) => boolean) | undefined {
  const header = /^request\.headers\[(.+)\]$/.exec(key);
  if (header !== null) {
    if (req.http === undefined) return undefined;
    const value = req.http.header(header[1]!.toLowerCase());
    return (v) => valueMatches(v, value);
  }
  switch (key) {
    case 'source.ip':
      return (v) => ipInBlock(req.sourceIp, v);
    case 'remote.ip':
      return (v) => ipInBlock(req.remoteIp ?? req.sourceIp, v);
    case 'destination.ip':
      return (v) => req.destinationIp !== undefined && ipInBlock(req.destinationIp, v);
    case 'destination.port':
      return (v) => v === String(req.destinationPort);
    case 'connection.sni':
      return (v) => valueMatches(v, req.sni ?? undefined);
    case 'source.namespace':
      return (v) => valueMatches(v, req.sourceNamespace);
    case 'source.principal':
      return (v) => valueMatches(v, req.sourcePrincipal);
    default:
      if (isHttpKey(key)) return req.http === undefined ? undefined : () => false; // request.auth.*: no JWT validation
      return () => false; // unknown key: analyze reports it; it matches nothing
  }
}

/** Istio's field pair: the positive list must match one value (when set), the negative list none. */
function field(values: readonly string[] | undefined, notValues: readonly string[] | undefined, test: (v: string) => boolean): boolean {
  if (values !== undefined && !values.some(test)) return false;
  if (notValues !== undefined && notValues.some(test)) return false;
  return true;
}

/** Istio string match: `*` any non-empty value, `abc*` prefix, `*abc` suffix, else exact. */
export function valueMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern === '*') return value.length > 0;
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return value === pattern;
}

/** Hosts are compared case-insensitively, with or without the authority's port. */
function hostMatches(pattern: string, h: AuthzHttp): boolean {
  const p = pattern.toLowerCase();
  return valueMatches(p, h.host) || valueMatches(p, h.authority.toLowerCase());
}

const blockCache = new Map<string, ReturnType<typeof parseCidr>>();

function ipInBlock(address: string, block: string): boolean {
  const ip = peerIp(address);
  if (ip === undefined) return false;
  let cidr = blockCache.get(block);
  if (cidr === undefined && !blockCache.has(block)) {
    cidr = parseCidr(block);
    if (blockCache.size < 10_000) blockCache.set(block, cidr);
  }
  return cidr !== undefined && cidrContains(cidr, ip);
}

/** A socket's address, IPv4-mapped IPv6 (`::ffff:10.1.2.3`) read as the IPv4 address. */
let lastPeer = '';
let lastPeerIp: Ip | undefined;

function peerIp(address: string): Ip | undefined {
  // One-entry cache: every block of one request is tested against the same peer address.
  if (address === lastPeer) return lastPeerIp;
  lastPeer = address;
  lastPeerIp = parsePeer(address);
  return lastPeerIp;
}

function parsePeer(address: string): Ip | undefined {
  const mapped = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return parseIp(mapped);
}

/** Envoy's name for a matched policy in response details and logs: `ns[NS]-policy[NAME]-rule[N]`. */
export function matchName(m: AuthzMatch | undefined): string {
  return m === undefined ? 'none' : `ns[${m.policy.namespace}]-policy[${m.policy.name}]-rule[${m.ruleIndex}]`;
}

/** The local reply detail Envoy gives a denied request (`response_code_details`). */
export function deniedDetail(v: AuthzVerdict): string {
  return `rbac_access_denied_matched_policy[${matchName(v.deniedBy)}]`;
}
