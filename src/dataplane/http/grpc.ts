/**
 * gRPC over the HTTP engine: which requests are gRPC, the status a response carries, and the shape
 * of a proxy reply to a gRPC client — HTTP 200, `content-type: application/grpc`, `grpc-status` and
 * `grpc-message` in the head and no body ("trailers-only", grpc/doc/PROTOCOL-HTTP2.md), because a
 * gRPC client reads its outcome from grpc-status, not from the HTTP status.
 */
import { encodeGrpcMessage } from '../../shared/grpc-status.js';

/** `content-type` is application/grpc, or application/grpc+proto, application/grpc-web... */
export function isGrpcRequest(headers: readonly string[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length !== 12 || n.toLowerCase() !== 'content-type') continue;
    return headers[i + 1]!.toLowerCase().startsWith('application/grpc');
  }
  return false;
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
