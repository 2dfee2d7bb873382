/**
 * Consistent-hash load balancing (DestinationRule loadBalancer.consistentHash).
 *
 * Key: the request attribute the cluster names (header, cookie, source IP, query parameter).
 * No key in the request (header/cookie/parameter absent) -> undefined: the cluster's lbPolicy
 * decides, as Envoy does. Cookie generation (httpCookie.ttl on a request without the cookie) is not
 * implemented: such requests are balanced by lbPolicy.
 *
 * Choice: weighted rendezvous hashing (highest random weight). Every candidate gets a score from
 * hash(key, endpoint); the highest wins. Pure over (key, candidate set), no ring to rebuild when
 * endpoints change, and removing an endpoint moves only the keys it owned (the consistency
 * property Envoy's ring hash / Maglev give). O(n) per pick: fine for the endpoint counts of an
 * egress cluster.
 */
import type { ConsistentHashPolicy } from '../../snapshot/types.js';
import type { LbCandidate } from './lb.js';

/** FNV-1a 32-bit with murmur3's finalizer (good avalanche for short keys). */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function pickByHash<T extends LbCandidate>(c: readonly T[], key: string): T | undefined {
  if (c.length <= 1) return c[0];
  const kh = hash32(key);
  let best: T | undefined;
  let bestScore = -Infinity;
  for (const e of c) {
    if (e.weight <= 0 && best !== undefined) continue;
    // u in (0, 1); score = -w / ln(u): weighted rendezvous (larger weight -> proportionally more keys).
    const u = (hash32(e.key, kh) + 0.5) / 4294967296;
    const score = -Math.max(e.weight, 1e-9) / Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = e;
    }
  }
  return best;
}

/** What the hash key is read from: the raw request head (flat [name, value, ...] list). */
export interface HashFacts {
  readonly headers: readonly string[];
  /** Origin-form target, with the query string. */
  readonly path: string;
  readonly sourceIp: string;
}

function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = headers[i]!;
    if (k.length === name.length && k.toLowerCase() === name) return headers[i + 1];
  }
  return undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  for (const pair of path.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    if ((eq < 0 ? pair : pair.slice(0, eq)) === name) return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

/** The hash key of a request for a cluster's policy; undefined = no key (fall back to lbPolicy). */
export function hashKeyOf(p: ConsistentHashPolicy | undefined, f: HashFacts): string | undefined {
  if (p === undefined) return undefined;
  if (p.header !== undefined) return headerValue(f.headers, p.header);
  if (p.cookie !== undefined) return cookieValue(headerValue(f.headers, 'cookie'), p.cookie.name);
  if (p.sourceIp) return f.sourceIp;
  if (p.queryParameter !== undefined) return queryValue(f.path, p.queryParameter);
  return undefined;
}
