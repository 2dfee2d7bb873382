/**
 * The original destination of a connection the sidecar's capture rules diverted, per Istio
 * interception mode. REDIRECT (NAT) rewrote the destination to our port: the kernel keeps the
 * original in the conntrack entry, read with SO_ORIGINAL_DST. TPROXY did not rewrite anything: the
 * accepted socket's local address is the original destination (the listener is IP_TRANSPARENT);
 * Istio's TPROXY mode still REDIRECTs outbound, so SO_ORIGINAL_DST is asked first either way.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../shared/logger.js';
import { originalDestination } from '../../net/sockopt.js';
import { plainIp } from '../context.js';
import type { OriginalDestination } from '../route/original-dst.js';

const ENOENT = 2;

export function originalDestinationReader(mode: 'REDIRECT' | 'TPROXY', logger: Logger): (socket: Socket) => OriginalDestination | undefined {
  let warned = false;
  return (socket) => {
    const r = originalDestination(socket);
    if (r.ok) return { ip: r.value.ip, port: r.value.port };
    // TPROXY diverts inbound connections without rewriting them (outbound is still REDIRECTed):
    // the local address is where the client was going.
    if (mode === 'TPROXY' && socket.localAddress !== undefined && socket.localPort !== undefined) return { ip: plainIp(socket.localAddress), port: socket.localPort };
    // ENOENT: dialed directly (not redirected) — the listener's own chains decide.
    if (r.errno !== ENOENT && !warned) {
      warned = true;
      logger.warn('cannot read the original destination of captured connections', { reason: r.message });
    }
    return undefined;
  };
}
