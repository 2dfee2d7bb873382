/**
 * gRPC status codes (grpc/doc/statuscodes.md) and the HTTP <-> gRPC mappings a proxy needs: a
 * local reply to a gRPC client carries the gRPC status of its HTTP status (grpc/doc/http-grpc-status-mapping.md,
 * as Envoy maps them), and a gRPC fault abort answers a non-gRPC client with the HTTP status of its code.
 */

export const GRPC_STATUS_CODES = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A status as config writes it (`UNAVAILABLE`, `unavailable` or `14`), or undefined when it is none. */
export function grpcStatusCode(s: string): number | undefined {
  const t = s.trim();
  if (/^\d{1,2}$/.test(t)) {
    const n = Number(t);
    return n <= 16 ? n : undefined;
  }
  return (GRPC_STATUS_CODES as Readonly<Record<string, number>>)[t.toUpperCase()];
}

/** The gRPC status a gRPC client gets for a proxy reply with this HTTP status. */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS_CODES.INTERNAL;
    case 401:
      return GRPC_STATUS_CODES.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS_CODES.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS_CODES.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS_CODES.UNAVAILABLE;
    default:
      return GRPC_STATUS_CODES.UNKNOWN;
  }
}

/** The HTTP status a non-gRPC client gets for a gRPC status (the reverse direction). */
export function httpStatusOfGrpc(code: number): number {
  switch (code) {
    case GRPC_STATUS_CODES.OK:
      return 200;
    case GRPC_STATUS_CODES.CANCELLED:
      return 499;
    case GRPC_STATUS_CODES.INVALID_ARGUMENT:
    case GRPC_STATUS_CODES.FAILED_PRECONDITION:
    case GRPC_STATUS_CODES.OUT_OF_RANGE:
      return 400;
    case GRPC_STATUS_CODES.DEADLINE_EXCEEDED:
      return 504;
    case GRPC_STATUS_CODES.NOT_FOUND:
      return 404;
    case GRPC_STATUS_CODES.ALREADY_EXISTS:
    case GRPC_STATUS_CODES.ABORTED:
      return 409;
    case GRPC_STATUS_CODES.PERMISSION_DENIED:
      return 403;
    case GRPC_STATUS_CODES.RESOURCE_EXHAUSTED:
      return 429;
    case GRPC_STATUS_CODES.UNIMPLEMENTED:
      return 501;
    case GRPC_STATUS_CODES.UNAVAILABLE:
      return 503;
    case GRPC_STATUS_CODES.UNAUTHENTICATED:
      return 401;
    default:
      return 500;
  }
}

/** gRPC retry conditions of `retries.retryOn` (Envoy x-envoy-retry-grpc-on) and the status each retries. */
export const GRPC_RETRY_ON: Readonly<Record<string, number>> = {
  cancelled: GRPC_STATUS_CODES.CANCELLED,
  'deadline-exceeded': GRPC_STATUS_CODES.DEADLINE_EXCEEDED,
  internal: GRPC_STATUS_CODES.INTERNAL,
  'resource-exhausted': GRPC_STATUS_CODES.RESOURCE_EXHAUSTED,
  unavailable: GRPC_STATUS_CODES.UNAVAILABLE,
};

/**
 * `grpc-timeout` (grpc/doc/PROTOCOL-HTTP2.md: 1-8 digits and a unit H M S m u n) in ms, rounded
 * up; undefined when malformed (ignored, as gRPC servers do).
 */
export function grpcTimeoutMs(v: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (m === null) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    default:
      return Math.ceil(n / 1_000_000);
  }
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md): everything outside printable ASCII, and '%'. */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

/** The text of a percent-encoded grpc-message (malformed escapes are kept as they are). */
export function decodeGrpcMessage(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
