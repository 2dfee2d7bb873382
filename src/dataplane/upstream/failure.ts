/**
 * Typed upstream failures: an Envoy response flag for the access log and a stable snake_case
 * reason (docs/errors.md) for `tollgate_reason` and `tollgate_denied_total{reason}`.
 */

/** Envoy response flags Tollgate sets ('-' = none), plus Tollgate's BLOCKED for policy denials. */
export type ResponseFlag = 'UF' | 'URX' | 'UH' | 'NC' | 'NR' | 'DF' | 'UC' | 'DC' | 'DPE' | 'OM' | 'UT' | 'BLOCKED' | '-';

export interface UpstreamFailure {
  readonly flag: ResponseFlag;
  /** Stable snake_case reason (see docs/errors.md); never contains addresses. */
  readonly reason: string;
  /** Human detail (addresses, errno, TTLs): logs only, never a metric label. */
  readonly detail: string;
  readonly retryable: boolean;
  readonly cluster?: string;
  readonly upstreamHost?: string;
  readonly upstreamLocalAddress?: string;
}

export function failure(flag: ResponseFlag, reason: string, detail: string, retryable: boolean, extra: { cluster?: string; upstreamHost?: string; upstreamLocalAddress?: string } = {}): UpstreamFailure {
  return {
    flag,
    reason,
    detail,
    retryable,
    ...(extra.cluster !== undefined ? { cluster: extra.cluster } : {}),
    ...(extra.upstreamHost !== undefined ? { upstreamHost: extra.upstreamHost } : {}),
    ...(extra.upstreamLocalAddress !== undefined ? { upstreamLocalAddress: extra.upstreamLocalAddress } : {}),
  };
}

/** The status an HTTP client gets for an upstream failure: 403 for a policy denial, else 503. */
export function statusForFailure(f: UpstreamFailure): number {
  return f.flag === 'BLOCKED' ? 403 : 503;
}

/** The status a CONNECT client gets for an upstream failure (a DNS failure is a bad gateway there). */
export function connectStatusForFailure(f: UpstreamFailure): number {
  return f.flag === 'BLOCKED' ? 403 : f.flag === 'DF' ? 502 : f.flag === 'NC' || f.flag === 'NR' ? 403 : 503;
}

/** Maps a socket error from connect() to a failure. */
export function connectErrorFailure(err: NodeJS.ErrnoException, cluster: string, upstreamHost: string, local: string | undefined): UpstreamFailure {
  const extra = { cluster, upstreamHost, ...(local !== undefined ? { upstreamLocalAddress: local } : {}) };
  switch (err.code) {
    case 'ECONNREFUSED':
      return failure('UF', 'upstream_connect_refused', `connection to ${upstreamHost} refused`, true, extra);
    case 'EADDRNOTAVAIL':
      // From bind(): the source address is not on this host. From connect(): no free local port
      // for this destination (the ephemeral range is used up), with or without a source address.
      if (err.syscall === 'bind') return failure('UF', 'source_address_unavailable', `source address ${local ?? '?'} cannot be bound: ${err.message}`, false, extra);
      return failure('UF', 'ephemeral_ports_exhausted', `no free local port for a connection to ${upstreamHost}${local !== undefined ? ` from ${local}` : ''} (EADDRNOTAVAIL on connect: the ephemeral port range is in use, often by TIME_WAIT)`, true, extra);
    case 'EADDRINUSE':
      // bind(address, 0) found no free port (without IP_BIND_ADDRESS_NO_PORT), or connect() found the 4-tuple taken.
      return failure('UF', 'ephemeral_ports_exhausted', `no free local port for a connection to ${upstreamHost}${local !== undefined ? ` from ${local}` : ''} (EADDRINUSE on ${err.syscall ?? 'connect'})`, true, extra);
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return failure('UF', 'upstream_unreachable', `${upstreamHost}: ${err.code}`, true, extra);
    case 'ECONNRESET':
      return failure('UF', 'upstream_connect_reset', `${upstreamHost}: reset during connect`, true, extra);
    default:
      return failure('UF', 'upstream_connect_failed', `${upstreamHost}: ${err.code ?? ''} ${err.message}`, true, extra);
  }
}
