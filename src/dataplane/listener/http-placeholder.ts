/**
 * Stand-in for the HTTP engine until it is wired in: answers every connection on an `http`
 * filter chain with 503 and logs reason `http_engine_unavailable`.
 */
import type { DataPlaneServices, DownstreamConnection, HttpConnectionHandler } from '../context.js';
import { addrPort, elapsedMs } from '../context.js';
import { emptyRecord } from '../observe/access-log.js';
import type { HttpConnectionManager } from '../../snapshot/types.js';

const BODY = 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\nX-Tollgate-Reason: http_engine_unavailable\r\n\r\nhttp_engine_unavailable';

export function placeholderHttpHandler(services: DataPlaneServices): HttpConnectionHandler {
  return {
    handle(conn: DownstreamConnection, filter: HttpConnectionManager): void {
      const s = conn.socket;
      const r = emptyRecord(conn.startTime, addrPort(conn.remoteAddress, conn.remotePort), addrPort(conn.localAddress, conn.localPort));
      r.response_code = 503;
      r.response_flags = 'NR';
      r.route_name = filter.routeConfigName;
      r.tollgate_reason = 'http_engine_unavailable';
      r.bytes_sent = BODY.length;
      s.on('error', () => {});
      s.on('data', () => {});
      s.resume();
      s.end(BODY);
      setTimeout(() => s.destroy(), 1000).unref();
      r.duration = elapsedMs(conn.startHr);
      services.accessLog.log(r);
      services.metrics.denied('http_engine_unavailable');
    },
  };
}
