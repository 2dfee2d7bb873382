/**
 * Per caller namespace source addresses: k8s.ovn.org/v1 EgressIP (namespaceSelector/podSelector)
 * and OpenShift SDN NetNamespace.egressIPs (the namespace named by netname). The caller's namespace
 * is known from its client IP, through the Pods in the config (status.podIP). Each rule keeps only
 * the addresses this replica's node may use (HostSubnet placement, model/source-pools.ts).
 */
import type { Resource } from '../config/decode.js';
import type { LabelSelector } from '../config/types.js';
import type { Model } from '../model/build.js';
import { selectorMatches } from '../model/selectors.js';
import { usableAddresses, type SourcePool } from '../model/source-pools.js';
import { originOf } from './generate/origin.js';
import type { EgressIpRule, ProxyIdentity } from './types.js';

export function egressIpRules(model: Model, proxy: ProxyIdentity): EgressIpRule[] {
  const rule = (name: string, resource: Resource, all: readonly string[], namespaces: string[], podSelector: LabelSelector | undefined): EgressIpRule => {
    const pool: SourcePool | undefined = model.sourcePools.find((p) => p.resource === resource);
    const callers = model.workloads.filter((w) => w.ip && namespaces.includes(w.namespace) && selectorMatches(podSelector, w.labels));
    const callerNamespaces: Record<string, string> = {};
    for (const w of callers) if (w.ip) callerNamespaces[w.ip] = w.namespace;
    return {
      name,
      sourceAddresses: pool ? usableAddresses(pool, proxy.nodeName) : [...all],
      namespaces,
      callerIps: Object.keys(callerNamespaces).sort(),
      callerNamespaces,
      ...(hasSelector(podSelector) ? { podSelected: true as const } : {}),
      origin: originOf(resource),
    };
  };
  const rules: EgressIpRule[] = [];
  for (const e of model.egressIps) {
    const namespaces = [...model.namespaces.entries()].filter(([, labels]) => selectorMatches(e.spec.namespaceSelector, labels)).map(([ns]) => ns).sort();
    rules.push(rule(e.name, e, e.spec.egressIPs, namespaces, e.spec.podSelector));
  }
  for (const n of model.netNamespaces) {
    if (n.egressIPs.length === 0) continue;
    rules.push(rule(`NetNamespace ${n.namespace}`, n.resource, n.egressIPs, [n.namespace], undefined));
  }
  return rules;
}

function hasSelector(s: LabelSelector | undefined): boolean {
  return s !== undefined && (Object.keys(s.matchLabels ?? {}).length > 0 || (s.matchExpressions ?? []).length > 0);
}
