/**
 * Fault injection (VirtualService `fault`, Envoy's envoy.filters.http.fault): per route, an abort
 * (the given status, flag FI, reason fault_abort) and/or a delay (flag DI, then the chain goes on)
 * for a percentage of requests. Whether this request is aborted or delayed is drawn by the route
 * decision (route/http-route.ts), which `trace` runs too; this filter carries it out, first in the
 * chain, so an aborted request is not rate-limited, mirrored or forwarded.
 */
import type { RouteAction } from '../../../snapshot/types.js';
import { CONTINUE, STOP, type HttpFilterFactory } from '../filter.js';

type Fault = NonNullable<Extract<RouteAction, { type: 'forward' }>['fault']>;

interface RouteFault {
  readonly routeName: string;
  readonly fault: Fault;
}

export const faultFilter: HttpFilterFactory<undefined, RouteFault> = {
  name: 'fault',
  compile: () => undefined,
  forRoute: (_c, route) => (route !== undefined && route.action.type === 'forward' && route.action.fault !== undefined ? { routeName: route.name, fault: route.action.fault } : undefined),
  create: () => ({
    onRequestHeaders(s) {
      const d = s.decision;
      if (d.kind === 'reply' && d.flag === 'FI') {
        s.sendLocalReply(d.status, d.flag, d.reason, d.detail, d.replyHeaders, d.body);
        return STOP;
      }
      if (d.delayMs > 0) {
        s.info.flags = 'DI';
        setTimeout(() => s.continueDecoding(), d.delayMs).unref();
        return STOP;
      }
      return CONTINUE;
    },
  }),
  explain: (rf) =>
    [rf.fault.abort ? `abort ${rf.fault.abort.status} for ${rf.fault.abort.percent}% (FI fault_abort)` : '', rf.fault.delay ? `delay ${rf.fault.delay.ms} ms for ${rf.fault.delay.percent}% (DI)` : ''].filter(Boolean).join('; '),
};
