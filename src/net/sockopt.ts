/**
 * Socket options Node has no API for, read and set on a socket's file descriptor through libc
 * (koffi: an FFI library whose npm package ships prebuilt binaries; docs/dependencies.md).
 *
 *   originalDestination()  getsockopt(SOL_IP, SO_ORIGINAL_DST) / (SOL_IPV6, IP6T_SO_ORIGINAL_DST):
 *                          where a connection was going before netfilter REDIRECTed it to us
 *   setTransparent()       IP_TRANSPARENT / IPV6_TRANSPARENT: accept TPROXY-diverted connections
 *   setIntOption()         any integer option
 *   boundSocketNoPort()    a TCP socket bound to a source address with IP_BIND_ADDRESS_NO_PORT,
 *                          for Node to connect: the kernel picks the port at connect() per
 *                          destination instead of reserving one per socket at bind()
 *   raiseNoFileLimit()     setrlimit(RLIMIT_NOFILE) up to the hard limit
 *
 * Linux only. libc is loaded on first use; everything returns an error value instead of throwing
 * so a data-plane caller can log it and carry on.
 */
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import { parseIp } from './ip.js';

export const SOL_IP = 0;
export const SOL_IPV6 = 41;
export const SOL_SOCKET = 1;
export const SO_ORIGINAL_DST = 80;
export const IP6T_SO_ORIGINAL_DST = 80;
export const IP_TRANSPARENT = 19;
export const IPV6_TRANSPARENT = 75;
export const IP_BIND_ADDRESS_NO_PORT = 24;
const RLIMIT_NOFILE = 7;
const AF_INET = 2;
const AF_INET6 = 10;

export interface SocketAddress {
  readonly ip: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export type SockoptResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errno: number; readonly message: string };

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  close(fd: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: number[]): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getrlimit(resource: number, value: Buffer): number;
  setrlimit(resource: number, value: Buffer): number;
  errno(): number;
}

let libc: Libc | Error | undefined;

function loadLibc(): Libc | Error {
  if (libc !== undefined) return libc;
  try {
    if (process.platform !== 'linux') throw new Error(`socket options need Linux (this is ${process.platform})`);
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(name: string): { func(signature: string): (...args: unknown[]) => number };
      errno(): number;
    };
    const lib = koffi.load('libc.so.6');
    const get = lib.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *value, _Inout_ uint32_t *len)');
    const set = lib.func('int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)');
    const getr = lib.func('int getrlimit(int resource, _Out_ uint8_t *value)');
    const setr = lib.func('int setrlimit(int resource, const uint8_t *value)');
    const sock = lib.func('int socket(int domain, int type, int protocol)');
    const bnd = lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)');
    const cls = lib.func('int close(int fd)');
    libc = {
      socket: (domain, type, protocol) => sock(domain, type, protocol),
      bind: (fd, addr, len) => bnd(fd, addr, len),
      close: (fd) => cls(fd),
      getsockopt: (fd, level, name, value, len) => get(fd, level, name, value, len),
      setsockopt: (fd, level, name, value, len) => set(fd, level, name, value, len),
      getrlimit: (resource, value) => getr(resource, value),
      setrlimit: (resource, value) => setr(resource, value),
      errno: () => koffi.errno(),
    };
  } catch (e) {
    libc = e instanceof Error ? e : new Error(String(e));
  }
  return libc;
}

/** Whether the native piece loads here (tests and `--help` text use it). */
export function sockoptAvailable(): boolean {
  return !(loadLibc() instanceof Error);
}

/** The kernel file descriptor behind a connected socket or a listening server (libuv's handle). */
export function fdOf(s: Socket | Server): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function fail<T>(errno: number, message: string): SockoptResult<T> {
  return { ok: false, errno, message };
}

/**
 * The destination the client dialed before an iptables/nftables REDIRECT (or DNAT) sent the
 * connection here. ENOENT (2) means the connection was not translated: it came here directly.
 */
export function originalDestination(socket: Socket): SockoptResult<SocketAddress> {
  const lib = loadLibc();
  if (lib instanceof Error) return fail(0, lib.message);
  const fd = fdOf(socket);
  if (fd === undefined) return fail(0, 'socket has no file descriptor');
  const v6 = socket.remoteFamily === 'IPv6' && !(socket.localAddress ?? '').startsWith('::ffff:');
  const buf = Buffer.alloc(28);
  const len = [buf.length];
  const rc = v6 ? lib.getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, buf, len) : lib.getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, buf, len);
  if (rc !== 0) {
    const errno = lib.errno();
    return fail(errno, errno === 2 ? 'not redirected (no original destination)' : `getsockopt SO_ORIGINAL_DST failed, errno ${errno}`);
  }
  const parsed = parseSockaddr(buf);
  return parsed ? { ok: true, value: parsed } : fail(0, 'unexpected address family in SO_ORIGINAL_DST');
}

/** struct sockaddr_in / sockaddr_in6 (family in host order, port in network order). */
export function parseSockaddr(buf: Buffer): SocketAddress | undefined {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET) return { ip: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  if (family === AF_INET6) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(8 + i * 2).toString(16));
    const ip = words.join(':');
    // An IPv4-mapped destination is reported as the plain IPv4 address, as the listener does.
    const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(ip);
    if (mapped) {
      const hi = parseInt(mapped[1] ?? '0', 16);
      const lo = parseInt(mapped[2] ?? '0', 16);
      return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, port, family: 4 };
    }
    return { ip: compressV6(words), port, family: 6 };
  }
  return undefined;
}

function compressV6(words: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** setsockopt with a 32-bit integer value. */
export function setIntOption(fd: number, level: number, name: number, value: number): SockoptResult<void> {
  const lib = loadLibc();
  if (lib instanceof Error) return fail(0, lib.message);
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value, 0);
  if (lib.setsockopt(fd, level, name, buf, 4) !== 0) {
    const errno = lib.errno();
    return fail(errno, `setsockopt(${level}, ${name}) failed, errno ${errno}${errno === 1 ? ' (EPERM: needs CAP_NET_ADMIN)' : ''}`);
  }
  return { ok: true, value: undefined };
}

/** getsockopt of a 32-bit integer option. */
export function getIntOption(fd: number, level: number, name: number): SockoptResult<number> {
  const lib = loadLibc();
  if (lib instanceof Error) return fail(0, lib.message);
  const buf = Buffer.alloc(4);
  const len = [4];
  if (lib.getsockopt(fd, level, name, buf, len) !== 0) {
    const errno = lib.errno();
    return fail(errno, `getsockopt(${level}, ${name}) failed, errno ${errno}`);
  }
  return { ok: true, value: buf.readInt32LE(0) };
}

/**
 * TPROXY: a listening socket must be transparent to accept connections addressed to other hosts;
 * the accepted socket's local address is then the original destination. Sets both the IPv4 and,
 * for IPv6 sockets, the IPv6 flag.
 */
export function setTransparent(fd: number, ipv6: boolean): SockoptResult<void> {
  const r = setIntOption(fd, SOL_IP, IP_TRANSPARENT, 1);
  if (!r.ok || !ipv6) return r;
  return setIntOption(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
}

/** Raises the soft open-files limit to the hard limit; returns the new soft limit. */
export function raiseNoFileLimit(): SockoptResult<number> {
  const lib = loadLibc();
  if (lib instanceof Error) return fail(0, lib.message);
  const buf = Buffer.alloc(16);
  if (lib.getrlimit(RLIMIT_NOFILE, buf) !== 0) return fail(lib.errno(), 'getrlimit(RLIMIT_NOFILE) failed');
  const hard = buf.readBigUInt64LE(8);
  buf.writeBigUInt64LE(hard, 0);
  if (lib.setrlimit(RLIMIT_NOFILE, buf) !== 0) return fail(lib.errno(), 'setrlimit(RLIMIT_NOFILE) failed');
  return { ok: true, value: Number(hard > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : hard) };
}

const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

/** struct sockaddr_in / sockaddr_in6 for `ip` (an IPv4 or IPv6 literal) and `port`. */
export function encodeSockaddr(ip: string, port: number): Buffer | undefined {
  const parsed = parseIp(ip);
  if (parsed === undefined) return undefined;
  if (parsed.family === 4) {
    const buf = Buffer.alloc(16);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(port, 2);
    buf.writeUInt32BE(parsed.value, 4);
    return buf;
  }
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  buf.writeUInt32BE(parsed.w0, 8);
  buf.writeUInt32BE(parsed.w1, 12);
  buf.writeUInt32BE(parsed.w2, 16);
  buf.writeUInt32BE(parsed.w3, 20);
  return buf;
}

/**
 * A non-blocking TCP socket bound to `ip` with IP_BIND_ADDRESS_NO_PORT, ready for
 * `new net.Socket({ fd }).connect(...)`. Without the option, bind(ip, 0) reserves an ephemeral
 * port for the socket whatever it connects to, so one source address can hold at most as many
 * connections as the port range has ports, across all destinations; with it, the port is chosen at
 * connect() and only needs to be unique per destination. Errors carry bind's errno (EADDRNOTAVAIL:
 * the address is not assigned here).
 */
export function boundSocketNoPort(ip: string): SockoptResult<number> {
  const lib = loadLibc();
  if (lib instanceof Error) return fail(0, lib.message);
  const addr = encodeSockaddr(ip, 0);
  if (addr === undefined) return fail(0, `not an IP address: ${ip}`);
  const fd = lib.socket(addr.length === 16 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(lib.errno(), 'socket() failed');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1, 0);
  // Best effort: a kernel without the option (before 4.2) still binds, reserving the port.
  lib.setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, one, 4);
  if (lib.bind(fd, addr, addr.length) !== 0) {
    const errno = lib.errno();
    lib.close(fd);
    return fail(errno, `bind(${ip}) failed, errno ${errno}`);
  }
  return { ok: true, value: fd };
}
