/**
 * The router, the last filter of every chain (Envoy's envoy.filters.http.router): acts on the
 * routing decision. A local decision (no route, direct response, redirect, denial) is answered;
 * a forward gets an UpstreamRequest (router/upstream-request.ts: attempts, retries, deadlines)
 * that the stream then feeds the request body. Per route: the compiled retry policy.
 */
import { STOP, type HttpFilterFactory } from '../filter.js';
import { compileRetry, type CompiledRetry } from '../retry.js';
import { UpstreamRequest } from '../router/upstream-request.js';

export const routerFilter: HttpFilterFactory<undefined, CompiledRetry> = {
  name: 'router',
  compile: () => undefined,
  // Explicit-proxy forwards and requests no route matched: no retries (Envoy's dynamic forward proxy default).
  forRoute: (_c, route) => compileRetry(route !== undefined && route.action.type === 'forward' ? route.action.retries : undefined),
  create: () => ({
    onRequestHeaders(s, retry) {
      const d = s.decision;
      if (d.kind === 'reply') {
        s.sendLocalReply(d.status, d.flag, d.reason, d.detail, d.replyHeaders, d.body);
        return STOP;
      }
      const u = new UpstreamRequest(s.routerView(), retry);
      s.setUpstream(u);
      u.start();
      return STOP;
    },
  }),
  explain: (retry) => (retry.maxTries > 1 ? `retries: up to ${retry.maxTries - 1}` : undefined),
};
