/** Kubernetes label selectors and Istio's short-name rules, shared by every part of the model. */
import type { LabelSelector, StringMap } from '../config/types.js';

/** `matchLabels` semantics: every pair in `selector` is present in `labels`. An empty selector matches all. */
export function labelsMatch(selector: StringMap | undefined, labels: StringMap): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export function selectorMatches(selector: LabelSelector | undefined, labels: StringMap): boolean {
  if (!selector) return true;
  if (!labelsMatch(selector.matchLabels, labels)) return false;
  for (const e of selector.matchExpressions ?? []) {
    const v = labels[e.key];
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (v === undefined || !values.includes(v)) return false;
        break;
      case 'NotIn':
        if (v !== undefined && values.includes(v)) return false;
        break;
      case 'Exists':
        if (v === undefined) return false;
        break;
      case 'DoesNotExist':
        if (v !== undefined) return false;
        break;
    }
  }
  return true;
}

export const CLUSTER_DOMAIN = 'svc.cluster.local';

/**
 * Istio resolves a host without dots relative to the namespace of the object that names it:
 * `svc-clusterip` in namespace default is `svc-clusterip.default.svc.cluster.local`.
 * Wildcards and names with dots are left as written (lower-cased, trailing dot removed).
 */
export function resolveHost(host: string, namespace: string): string {
  let h = host.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === '*' || h.includes('.') || h.includes(':')) return h;
  return `${h}.${namespace}.${CLUSTER_DOMAIN}`;
}

/** `name` or `namespace/name` (Gateway references in VirtualServices); `mesh` stays `mesh`. */
export function resolveGatewayRef(ref: string, namespace: string): string {
  if (ref === 'mesh') return 'mesh';
  const slash = ref.indexOf('/');
  if (slash >= 0) return ref;
  // `name.namespace.svc.cluster.local` is an older accepted spelling.
  const dot = ref.indexOf('.');
  if (dot >= 0) return `${ref.slice(dot + 1).split('.')[0] ?? namespace}/${ref.slice(0, dot)}`;
  return `${namespace}/${ref}`;
}

/** Istio `exportTo`: absent or `*` = everywhere, `.` = own namespace, `~` = nowhere, else listed namespaces. */
export function visibleTo(exportTo: readonly string[] | undefined, ownNamespace: string, viewer: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && viewer === ownNamespace) return true;
    if (e === viewer) return true;
  }
  return false;
}
