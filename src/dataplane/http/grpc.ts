/**
 * gRPC over the HTTP engine: which requests are gRPC, the status a response carries, and the shape
 * of a proxy reply to a gRPC client — HTTP 200, `content-type: application/grpc`, `grpc-status` and
 * `grpc-message` in the head and no body ("trailers-only", grpc/doc/PROTOCOL-HTTP2.md), because a
 * gRPC client reads its outcome from grpc-status, not from the HTTP status.
 */
import { encodeGrpcMessage } from '../../shared/grpc-status.js';
import { rawFind, rawValue, type RequestHead } from './head.js';

/** `content-type` is application/grpc, or application/grpc+proto, application/grpc-web... */
export function isGrpcRequest(headers: readonly string[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length !== 12 || n.toLowerCase() !== 'content-type') continue;
    return isGrpcContentType(headers[i + 1]!);
  }
  return false;
}

/** isGrpcRequest() of a head, reading raw field lines in place when it has them. */
export function isGrpcHead(head: RequestHead): boolean {
  const raw = head.raw;
  if (raw === undefined) return isGrpcRequest(head.headers);
  const i = rawFind(raw, 'content-type');
  return i >= 0 && isGrpcContentType(rawValue(raw, i));
}

function isGrpcContentType(v: string): boolean {
  return v.length >= 16 && v.slice(0, 16).toLowerCase() === 'application/grpc';
}

/** The value of field `name` (lower case) in a flat field list, or null. */
export function fieldValue(fields: readonly string[], name: string): string | null {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const n = fields[i]!;
    if (n.length === name.length && n.toLowerCase() === name) return fields[i + 1]!;
  }
  return null;
}

/** The fields of a trailers-only gRPC reply with this status and message. */
export function grpcReplyFields(grpcStatus: number, message: string): string[] {
  return ['content-type', 'application/grpc', 'grpc-status', String(grpcStatus), 'grpc-message', encodeGrpcMessage(message)];
}
