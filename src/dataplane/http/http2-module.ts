/**
 * node:http2, loaded by the first HTTP/2 session (h2c or ALPN h2 downstream, an h2 upstream
 * cluster): its code and the pages of the node binary it touches add about 2 MB of RSS to every
 * proxy, and most proxies serve only HTTP/1.1.
 */
import { createRequire } from 'node:module';
import type * as Http2 from 'node:http2';

let loaded: typeof Http2 | undefined;

export function http2Module(): typeof Http2 {
  loaded ??= createRequire(import.meta.url)('node:http2') as typeof Http2;
  return loaded;
}

/** RFC 9113 error codes and frame flags (the values of http2.constants), usable before the module is loaded. */
export const H2_NO_ERROR = 0x0;
export const H2_INTERNAL_ERROR = 0x2;
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_FLAG_END_STREAM = 0x1;
