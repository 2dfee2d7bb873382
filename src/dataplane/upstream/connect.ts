/**
 * The one place an upstream TCP connection is opened. With a source address the socket is bound
 * with IP_BIND_ADDRESS_NO_PORT (src/net/sockopt.ts), so the kernel picks the local port at
 * connect() and only needs it unique per destination: a plain bind(address, 0) reserves a port per
 * socket whatever it connects to, so one source address could hold only as many connections as the
 * ephemeral range has ports, across all upstreams together. Where the native piece is missing,
 * Node's own bind-then-connect is used.
 */
import { connect as netConnect, Socket, type OnReadOpts } from 'node:net';
import { constants } from 'node:os';
import { boundSocketNoPort, sockoptAvailable } from '../../net/sockopt.js';

export interface ConnectTarget {
  readonly ip: string;
  readonly port: number;
  readonly localAddress?: string;
}

/**
 * A connecting socket, or the bind failure (an error with `code` and `syscall: 'bind'`). With
 * `onread` the socket reads into the caller's buffers instead of emitting 'data' (net's option).
 */
export function openUpstreamSocket(t: ConnectTarget, onread?: OnReadOpts): Socket | NodeJS.ErrnoException {
  const reads = onread !== undefined ? { onread } : {};
  if (t.localAddress === undefined || !sockoptAvailable()) {
    return netConnect({ host: t.ip, port: t.port, ...(t.localAddress !== undefined ? { localAddress: t.localAddress } : {}), allowHalfOpen: true, noDelay: true, ...reads });
  }
  const bound = boundSocketNoPort(t.localAddress);
  if (!bound.ok) return bindError(bound.errno, t.localAddress, bound.message);
  const sock = new Socket({ fd: bound.value, readable: true, writable: true, allowHalfOpen: true, ...reads });
  sock.setNoDelay(true);
  sock.connect({ host: t.ip, port: t.port });
  return sock;
}

function bindError(errno: number, address: string, message: string): NodeJS.ErrnoException {
  const code = Object.entries(constants.errno).find(([, v]) => v === errno)?.[0] ?? 'EUNKNOWN';
  return Object.assign(new Error(`bind ${code} ${address}: ${message}`), { code, errno, syscall: 'bind', address });
}
