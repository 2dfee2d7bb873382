/**
 * DNS for STRICT_DNS / LOGICAL_DNS clusters and for hosts the client names (ORIGINAL_DST, CONNECT).
 *
 * - node:dns Resolver (c-ares): talks DNS to the servers of /etc/resolv.conf, or to `--dns-server
 *   HOST:PORT` (setServers). /etc/hosts is NOT consulted (as Envoy's c-ares resolver).
 * - Answers are cached for their TTL (clamped to [minTtl, maxTtl]); TTL 0 is re-queried every time.
 * - Concurrent lookups of one name share one query.
 * - Negative answers (NXDOMAIN, no records) are cached for `negativeTtlSec`, so a client naming a
 *   host that does not exist cannot make every request a DNS query.
 * - When the resolver fails (timeout, SERVFAIL, refused) the last good answer is served, for at
 *   most `maxStaleSec` after it expired (Envoy keeps the last good host too): a DNS outage is not
 *   an outage of every DNS-resolved host. While stale, the answer is served at once and re-queried
 *   in the background every `staleRetrySec`; each stale answer is counted (`onStale`).
 * - A query that has not answered within timeout x tries, with nothing stale to serve, fails with
 *   DF `dns_resolution_failed`.
 * State here outlives snapshots (the cache is keyed by name, not by cluster).
 */
import { Resolver } from 'node:dns';

export type DnsFamily = 'V4_ONLY' | 'V6_ONLY' | 'AUTO';

export type DnsResult =
  | { readonly ok: true; readonly addresses: readonly string[]; readonly ttlSec: number; readonly cached: boolean; readonly stale?: true }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface DnsCacheOptions {
  readonly servers?: readonly string[];
  readonly timeoutMs?: number;
  readonly tries?: number;
  readonly minTtlSec?: number;
  readonly maxTtlSec?: number;
  /** How long after expiry the last good answer may stand in for a failing resolver (default 300). */
  readonly maxStaleSec?: number;
  /** How long NXDOMAIN / no-records answers are remembered (default 5). */
  readonly negativeTtlSec?: number;
  /** While serving stale, re-query at most this often (default 2). */
  readonly staleRetrySec?: number;
  /** Names kept (answers and negative answers); the oldest is forgotten beyond this (default 10000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
  readonly onQuery?: (result: 'ok' | 'error') => void;
  /** A stale answer was served because the resolver failed. */
  readonly onStale?: () => void;
}

interface Entry {
  readonly addresses: readonly string[];
  /** Fresh until then. */
  readonly expires: number;
  /** Usable as a stale answer until then. */
  readonly staleUntil: number;
  /** Being served stale (the resolver failed since it expired). */
  readonly stale: boolean;
}

interface Negative {
  readonly code: string;
  readonly message: string;
  readonly expires: number;
}

/** Answers that say "this name has no address" (as opposed to "the resolver did not answer"). */
const AUTHORITATIVE_NEGATIVE = new Set(['ENOTFOUND', 'ENODATA']);

export interface DnsCacheEntryView {
  readonly name: string;
  readonly family: DnsFamily;
  readonly addresses: readonly string[];
  readonly ttlLeftSec: number;
  /** Served although expired: the resolver is failing. */
  readonly stale?: true;
}

type RecordWithTtl = { address: string; ttl: number };

export class DnsCache {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, Entry>();
  private readonly negative = new Map<string, Negative>();
  private readonly inflight = new Map<string, Promise<DnsResult>>();
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly now: () => number;
  private readonly onQuery: ((r: 'ok' | 'error') => void) | undefined;
  private readonly onStale: (() => void) | undefined;
  private readonly maxStaleMs: number;
  private readonly negativeTtlMs: number;
  private readonly staleRetryMs: number;
  private readonly maxEntries: number;
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
    this.onStale = opts.onStale;
    this.maxStaleMs = (opts.maxStaleSec ?? 300) * 1000;
    this.negativeTtlMs = (opts.negativeTtlSec ?? 5) * 1000;
    this.staleRetryMs = (opts.staleRetrySec ?? 2) * 1000;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  /** Cached answer if fresh (synchronous fast path), else undefined. */
  peek(name: string, family: DnsFamily = 'AUTO'): readonly string[] | undefined {
    const e = this.cache.get(family + '|' + name);
    if (e === undefined || e.expires <= this.now()) return undefined;
    if (e.stale) this.onStale?.();
    return e.addresses;
  }

  resolve(name: string, family: DnsFamily = 'AUTO'): Promise<DnsResult> {
    const key = family + '|' + name;
    const now = this.now();
    const e = this.cache.get(key);
    if (e !== undefined) {
      if (e.expires > now) {
        if (e.stale) this.onStale?.();
        return Promise.resolve(this.answer(e, now));
      }
      if (e.stale && e.staleUntil > now) {
        // The resolver is known to be failing: answer now, retry in the background.
        void this.refresh(key, name, family);
        this.onStale?.();
        return Promise.resolve(this.answer(e, now));
      }
    }
    const neg = this.negative.get(key);
    if (neg !== undefined) {
      if (neg.expires > now) return Promise.resolve({ ok: false, code: neg.code, message: `${neg.message} (cached)` });
      this.negative.delete(key);
    }
    return this.refresh(key, name, family);
  }

  private answer(e: Entry, now: number): DnsResult {
    return { ok: true, addresses: e.addresses, ttlSec: Math.max(0, Math.ceil((e.expires - now) / 1000)), cached: true, ...(e.stale ? { stale: true as const } : {}) };
  }

  /** One query per name at a time; its outcome updates the cache (fresh, negative, or stale). */
  private refresh(key: string, name: string, family: DnsFamily): Promise<DnsResult> {
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.query(name, family).then((r) => {
        this.inflight.delete(key);
        this.onQuery?.(r.ok ? 'ok' : 'error');
        return this.settle(key, r);
      });
      this.inflight.set(key, p);
    }
    return p;
  }

  private settle(key: string, r: DnsResult): DnsResult {
    const now = this.now();
    if (r.ok) {
      // TTL 0 answers are kept too, expired at once: re-queried every time, but a fallback.
      const expires = now + r.ttlSec * 1000;
      this.remember(key, { addresses: r.addresses, expires, staleUntil: expires + this.maxStaleMs, stale: false });
      this.negative.delete(key);
      return r;
    }
    const old = this.cache.get(key);
    if (AUTHORITATIVE_NEGATIVE.has(r.code)) {
      this.cache.delete(key);
      if (this.negativeTtlMs > 0) {
        this.negative.delete(key);
        this.negative.set(key, { code: r.code, message: r.message, expires: now + this.negativeTtlMs });
        if (this.negative.size > this.maxEntries) this.negative.delete(this.negative.keys().next().value!);
      }
      return r;
    }
    if (old !== undefined && old.staleUntil > now) {
      this.remember(key, { ...old, expires: Math.min(now + this.staleRetryMs, old.staleUntil), stale: true });
      this.onStale?.();
      return { ok: true, addresses: old.addresses, ttlSec: Math.ceil(this.staleRetryMs / 1000), cached: true, stale: true };
    }
    if (old !== undefined) this.cache.delete(key);
    return r;
  }

  private remember(key: string, e: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, e);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }

  entries(): DnsCacheEntryView[] {
    const now = this.now();
    const out: DnsCacheEntryView[] = [];
    for (const [key, e] of this.cache) {
      if (e.staleUntil <= now) continue;
      const bar = key.indexOf('|');
      out.push({ name: key.slice(bar + 1), family: key.slice(0, bar) as DnsFamily, addresses: e.addresses, ttlLeftSec: Math.max(0, Math.ceil((e.expires - now) / 1000)), ...(e.stale ? { stale: true as const } : {}) });
    }
    return out;
  }

  clear(): void {
    this.cache.clear();
    this.negative.clear();
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
