/**
 * Adds one response field to every answer of a listener — upstream responses and the proxy's own
 * replies alike (Gateway annotation `tollgate.io/response-header: "name: value"`, e.g. to say which
 * gateway answered). A route or virtual host may set its own value in
 * `typedPerFilterConfig.add_response_header`. The small example of a filter that
 * docs/dataplane-internals.md walks through.
 */
import type { Route, VirtualHost } from '../../../snapshot/types.js';
import { perFilterConfig, type HttpFilterFactory } from '../filter.js';

export const ADD_RESPONSE_HEADER = 'add_response_header';

export interface ResponseHeaderConfig {
  readonly name: string;
  readonly value: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Hop-by-hop and framing fields are the proxy's own. */
const RESERVED = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection']);

/** Validates `{name, value}` (from snapshot JSON): a field name token, a value without control characters. */
export function toResponseHeader(raw: unknown): ResponseHeaderConfig {
  const o = raw as { name?: unknown; value?: unknown } | null;
  if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.value !== 'string') throw new Error(`${ADD_RESPONSE_HEADER}: want {name, value}, got ${JSON.stringify(raw)}`);
  if (!TOKEN.test(o.name) || RESERVED.has(o.name.toLowerCase())) throw new Error(`${ADD_RESPONSE_HEADER}: "${o.name}" is not a field name the proxy may add`);
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(o.value)) throw new Error(`${ADD_RESPONSE_HEADER}: the value of ${o.name} has control characters`);
  return { name: o.name, value: o.value.trim() };
}

export const addResponseHeaderFilter: HttpFilterFactory<ResponseHeaderConfig | undefined, ResponseHeaderConfig> = {
  name: ADD_RESPONSE_HEADER,
  compile: (raw) => (raw === undefined ? undefined : toResponseHeader(raw)),
  forRoute: (config, route: Route | undefined, vhost: VirtualHost | undefined) => {
    const own = perFilterConfig(ADD_RESPONSE_HEADER, route, vhost);
    return own !== undefined ? toResponseHeader(own) : config;
  },
  create: () => ({
    onResponseHeaders(s, _head, h) {
      s.addResponseHeader(h.name, h.value);
    },
  }),
  explain: (h) => `adds response header ${h.name}: ${h.value}`,
};
