/**
 * DNS for STRICT_DNS / LOGICAL_DNS clusters and for hosts the client names (ORIGINAL_DST, CONNECT).
 *
 * - node:dns Resolver (c-ares): talks DNS to the servers of /etc/resolv.conf, or to `--dns-server
 *   HOST:PORT` (setServers). /etc/hosts is NOT consulted (as Envoy's c-ares resolver).
 * - Answers are cached for their TTL (clamped to [minTtl, maxTtl]); TTL 0 is not cached.
 * - Concurrent lookups of one name share one query. Failures are not cached.
 * - A query that has not answered within timeout x tries fails with DF `dns_resolution_failed`.
 * State here outlives snapshots (the cache is keyed by name, not by cluster).
 */
import { Resolver } from 'node:dns';

export type DnsFamily = 'V4_ONLY' | 'V6_ONLY' | 'AUTO';

export type DnsResult =
  | { readonly ok: true; readonly addresses: readonly string[]; readonly ttlSec: number; readonly cached: boolean }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface DnsCacheOptions {
  readonly servers?: readonly string[];
  readonly timeoutMs?: number;
  readonly tries?: number;
  readonly minTtlSec?: number;
  readonly maxTtlSec?: number;
  readonly now?: () => number;
  readonly onQuery?: (result: 'ok' | 'error') => void;
}

interface Entry {
  readonly addresses: readonly string[];
  readonly expires: number;
  readonly ttlSec: number;
}

export interface DnsCacheEntryView {
  readonly name: string;
  readonly family: DnsFamily;
  readonly addresses: readonly string[];
  readonly ttlLeftSec: number;
}

type RecordWithTtl = { address: string; ttl: number };

export class DnsCache {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<DnsResult>>();
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly now: () => number;
  private readonly onQuery: ((r: 'ok' | 'error') => void) | undefined;
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly tries: number;

  constructor(opts: DnsCacheOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.tries = opts.tries ?? 2;
    this.resolver = new Resolver({ timeout: this.timeoutMs, tries: this.tries });
    if (opts.servers && opts.servers.length > 0) this.resolver.setServers([...opts.servers]);
    this.servers = this.resolver.getServers();
    this.minTtl = opts.minTtlSec ?? 0;
    this.maxTtl = opts.maxTtlSec ?? 300;
    this.now = opts.now ?? Date.now;
    this.onQuery = opts.onQuery;
  }

  /** Cached answer if fresh (synchronous fast path), else undefined. */
  peek(name: string, family: DnsFamily = 'AUTO'): readonly string[] | undefined {
    const e = this.cache.get(family + '|' + name);
    if (e !== undefined && e.expires > this.now()) return e.addresses;
    return undefined;
  }

  resolve(name: string, family: DnsFamily = 'AUTO'): Promise<DnsResult> {
    const key = family + '|' + name;
    const e = this.cache.get(key);
    const now = this.now();
    if (e !== undefined) {
      if (e.expires > now) return Promise.resolve({ ok: true, addresses: e.addresses, ttlSec: Math.ceil((e.expires - now) / 1000), cached: true });
      this.cache.delete(key);
    }
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.query(name, family).then((r) => {
        this.inflight.delete(key);
        this.onQuery?.(r.ok ? 'ok' : 'error');
        if (r.ok && r.ttlSec > 0) this.cache.set(key, { addresses: r.addresses, expires: this.now() + r.ttlSec * 1000, ttlSec: r.ttlSec });
        return r;
      });
      this.inflight.set(key, p);
    }
    return p;
  }

  entries(): DnsCacheEntryView[] {
    const now = this.now();
    const out: DnsCacheEntryView[] = [];
    for (const [key, e] of this.cache) {
      const bar = key.indexOf('|');
      out.push({ name: key.slice(bar + 1), family: key.slice(0, bar) as DnsFamily, addresses: e.addresses, ttlLeftSec: Math.max(0, Math.ceil((e.expires - now) / 1000)) });
    }
    return out;
  }

  clear(): void {
    this.cache.clear();
  }

  cancel(): void {
    this.resolver.cancel();
  }

  private async query(name: string, family: DnsFamily): Promise<DnsResult> {
    if (family === 'V6_ONLY') return this.one(name, 6);
    const v4 = await this.one(name, 4);
    if (v4.ok || family === 'V4_ONLY') return v4;
    if (v4.code !== 'ENODATA') return v4;
    const v6 = await this.one(name, 6);
    return v6.ok ? v6 : v4;
  }

  private one(name: string, fam: 4 | 6): Promise<DnsResult> {
    return new Promise((resolve) => {
      const cb = (err: NodeJS.ErrnoException | null, records: RecordWithTtl[]): void => {
        if (err) {
          resolve({ ok: false, code: err.code ?? 'EDNS', message: `${name}: ${err.code ?? ''} ${err.message}`.trim() });
          return;
        }
        if (records.length === 0) {
          resolve({ ok: false, code: 'ENODATA', message: `${name}: no ${fam === 4 ? 'A' : 'AAAA'} records` });
          return;
        }
        let ttl = Infinity;
        const addresses: string[] = [];
        for (const r of records) {
          addresses.push(r.address);
          if (r.ttl < ttl) ttl = r.ttl;
        }
        const ttlSec = Math.min(this.maxTtl, Math.max(this.minTtl, ttl === Infinity ? 0 : ttl));
        resolve({ ok: true, addresses, ttlSec, cached: false });
      };
      if (fam === 4) this.resolver.resolve4(name, { ttl: true }, cb);
      else this.resolver.resolve6(name, { ttl: true }, cb);
    });
  }
}
