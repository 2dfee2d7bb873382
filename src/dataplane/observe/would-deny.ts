/**
 * What a report-only proxy let through that enforcement would refuse: the counter
 * tollgate_would_deny_total{destination_host,source_namespace,protocol} and, per destination
 * host:port, the evidence `tollgate suggest --admin` and the dashboard turn into ServiceEntries
 * (first/last seen, count, calling namespaces).
 *
 * Only would-be denials reach this table (never allowed traffic), and it is bounded: past
 * MAX_DESTINATIONS distinct host:port pairs, further destinations are counted under the host
 * `other` (the access log still has each of them), so a scan of random names cannot grow memory
 * or the metric's series count without limit.
 */
import type { Counter } from './metrics.js';

export const MAX_DESTINATIONS = 1000;
export const OVERFLOW_HOST = 'other';
const MAX_NAMESPACES_PER_DESTINATION = 32;

/** How the traffic was recognised: HTTP by Host, TLS by SNI/CONNECT, TCP by address. */
export type ObservedProtocol = 'HTTP' | 'TLS' | 'TCP';

export interface Observation {
  readonly host: string;
  readonly port: number;
  readonly protocol: ObservedProtocol;
  count: number;
  firstSeen: number;
  lastSeen: number;
  readonly namespaces: Set<string>;
}

export class WouldDenyTable {
  private readonly byKey = new Map<string, Observation>();

  constructor(private readonly counter: Counter, private readonly now: () => number = Date.now) {}

  record(host: string, port: number, protocol: ObservedProtocol, sourceNamespace: string): void {
    let key = `${host}:${port}/${protocol}`;
    let o = this.byKey.get(key);
    if (o === undefined) {
      if (this.byKey.size >= MAX_DESTINATIONS) {
        host = OVERFLOW_HOST;
        port = 0;
        key = `${OVERFLOW_HOST}:0/${protocol}`;
        o = this.byKey.get(key);
      }
      if (o === undefined) {
        const t = this.now();
        o = { host, port, protocol, count: 0, firstSeen: t, lastSeen: t, namespaces: new Set() };
        this.byKey.set(key, o);
      }
    }
    o.count++;
    o.lastSeen = this.now();
    if (o.namespaces.size < MAX_NAMESPACES_PER_DESTINATION) o.namespaces.add(sourceNamespace);
    this.counter.labels(o.host, sourceNamespace, protocol.toLowerCase()).inc();
  }

  /** Sorted by host, then port, then protocol (stable output for suggest). */
  snapshot(): ObservationJson[] {
    return [...this.byKey.values()]
      .map((o) => ({ host: o.host, port: o.port, protocol: o.protocol, count: o.count, firstSeen: new Date(o.firstSeen).toISOString(), lastSeen: new Date(o.lastSeen).toISOString(), namespaces: [...o.namespaces].sort() }))
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0)));
  }
}

/** The JSON shape of one observation (admin /observed, suggest --admin). */
export interface ObservationJson {
  readonly host: string;
  readonly port: number;
  readonly protocol: ObservedProtocol;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly namespaces: readonly string[];
}
