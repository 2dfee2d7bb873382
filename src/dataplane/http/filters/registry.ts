/**
 * The HTTP filters a snapshot may name in `httpFilters`, by name. Adding a filter: its file in this
 * directory, one entry here, and the snapshot generation that puts it in a listener's list (or a
 * route's typedPerFilterConfig). docs/dataplane-internals.md walks through one.
 */
import type { HttpFilterFactory } from '../filter.js';
import { addResponseHeaderFilter } from './add-response-header.js';
import { faultFilter } from './fault.js';
import { headerMutationFilter } from './header-mutation.js';
import { localRateLimitFilter } from './local-rate-limit.js';
import { mirrorFilter } from './mirror.js';
import { rbacFilter } from './rbac.js';
import { routerFilter } from './router.js';

/** Erases a factory's config types: the chain compiler passes each filter only what its own factory made. */
function entry<C, R, S>(f: HttpFilterFactory<C, R, S>): [string, HttpFilterFactory] {
  return [f.name, f as unknown as HttpFilterFactory];
}

export const FILTER_REGISTRY: ReadonlyMap<string, HttpFilterFactory> = new Map([entry(rbacFilter), entry(faultFilter), entry(localRateLimitFilter), entry(headerMutationFilter), entry(mirrorFilter), entry(addResponseHeaderFilter), entry(routerFilter)]);
