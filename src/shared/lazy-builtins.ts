/**
 * node:tls, node:crypto and node:https, loaded when something first uses them.
 *
 * A plain-HTTP gateway never terminates or originates TLS, yet a static import loads these modules at
 * start and keeps them for the life of the process: the crypto bindings, and tls's root certificates
 * turned into strings (about 2 MB of RSS together). Modules that need them call these functions at the
 * point of use and import only types statically.
 */
import type * as Crypto from 'node:crypto';
import type * as Https from 'node:https';
import type * as Tls from 'node:tls';

let tlsModule: typeof Tls | undefined;
let cryptoModule: typeof Crypto | undefined;
let httpsModule: typeof Https | undefined;

export function nodeTls(): typeof Tls {
  return (tlsModule ??= process.getBuiltinModule('node:tls'));
}

export function nodeCrypto(): typeof Crypto {
  return (cryptoModule ??= process.getBuiltinModule('node:crypto'));
}

export function nodeHttps(): typeof Https {
  return (httpsModule ??= process.getBuiltinModule('node:https'));
}

/**
 * Whether `s` is a tls.TLSSocket, without loading node:tls: every TLSSocket sets `encrypted` to true,
 * the property Node documents for telling TLS sockets from net.Socket.
 */
export function isTlsSocket(s: object): s is Tls.TLSSocket {
  return (s as { encrypted?: unknown }).encrypted === true;
}
