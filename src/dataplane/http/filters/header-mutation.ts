/**
 * Route header mutations (VirtualService `headers.request` / `headers.response`): compiled once per
 * route at apply; the router writes the request ones into the upstream head and the stream the
 * response ones into the downstream head, in the same pass that drops hop-by-hop fields.
 */
import type { HeaderMutations } from '../../../snapshot/types.js';
import { CONTINUE, type HttpFilterFactory } from '../filter.js';
import { compileHeaderOps, type CompiledHeaderOps } from '../headers.js';

interface RouteOps {
  readonly request: CompiledHeaderOps | null;
  readonly response: CompiledHeaderOps | null;
}

function describe(m: HeaderMutations | undefined): string {
  if (m === undefined) return '';
  return [...Object.keys(m.set ?? {}).map((k) => `set ${k}`), ...Object.keys(m.add ?? {}).map((k) => `add ${k}`), ...(m.remove ?? []).map((k) => `remove ${k}`)].join(', ');
}

export const headerMutationFilter: HttpFilterFactory<undefined, RouteOps & { readonly text: string }> = {
  name: 'header_mutation',
  compile: () => undefined,
  forRoute: (_c, route) => {
    if (route === undefined || route.action.type !== 'forward') return undefined;
    const request = compileHeaderOps(route.action.requestHeaders);
    const response = compileHeaderOps(route.action.responseHeaders);
    if (request === null && response === null) return undefined;
    const rq = describe(route.action.requestHeaders);
    const rs = describe(route.action.responseHeaders);
    return { request, response, text: [rq ? `request: ${rq}` : '', rs ? `response: ${rs}` : ''].filter(Boolean).join('; ') };
  },
  create: () => ({
    onRequestHeaders(s, ops) {
      s.requestOps = ops.request;
      s.responseOps = ops.response;
      return CONTINUE;
    },
  }),
  explain: (ops) => ops.text,
};
