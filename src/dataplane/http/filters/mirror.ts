/**
 * Request mirroring (VirtualService `mirror` / `mirrorPercentage`): for the chosen share of a
 * route's requests, a copy (router/shadow.ts) gets the upstream head the router built, collects the
 * body, and goes out once the request is complete; a request that never completes is not mirrored.
 * Never for upgrade (WebSocket) requests.
 */
import type { HttpFilterFactory } from '../filter.js';
import { MIRROR_DEFAULT_TIMEOUT_MS, Mirror, MirrorState } from '../router/shadow.js';

interface RouteMirror {
  readonly cluster: string;
  readonly percent: number;
  readonly routeName: string;
}

export const mirrorFilter: HttpFilterFactory<undefined, RouteMirror, MirrorState> = {
  name: 'mirror',
  compile: () => undefined,
  forRoute: (_c, route) => {
    if (route === undefined || route.action.type !== 'forward') return undefined;
    const m = route.action.mirror;
    return m !== undefined && m.percent > 0 ? { cluster: m.cluster, percent: m.percent, routeName: route.name } : undefined;
  },
  shared: () => new MirrorState(),
  create: (_c, { slot, shared }) => ({
    onUpstreamRequest(s, up, rm) {
      if (s.head.upgrade || (rm.percent < 100 && s.downstream.random() * 100 >= rm.percent)) return;
      s.setState(slot, new Mirror(s.downstream, shared, s.head, up.text, up.host, up.chunked, rm.cluster, rm.routeName, up.timeoutMs > 0 ? up.timeoutMs : MIRROR_DEFAULT_TIMEOUT_MS));
    },
    onRequestBody(s, chunk, endStream) {
      const m = s.getState(slot) as Mirror | undefined;
      if (m === undefined) return;
      if (endStream) m.dispatch(); // after the main request's last byte
      else m.onBody(chunk);
    },
    onLog(s) {
      const m = s.getState(slot) as Mirror | undefined;
      if (m !== undefined && !s.requestComplete) m.abandon(); // the body never completed: no copy
    },
  }),
  explain: (rm) => `mirror ${rm.percent}% to ${rm.cluster} (fire-and-forget copy, Host suffixed -shadow, bodies over 64 KiB not mirrored)`,
};
