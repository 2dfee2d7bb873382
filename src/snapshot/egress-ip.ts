/**
 * k8s.ovn.org/v1 EgressIP -> per caller namespace source addresses. The caller's namespace is
 * known from its client IP, through the Pods in the config (status.podIP).
 */
import type { Model } from '../model/build.js';
import { selectorMatches } from '../model/selectors.js';
import { originOf } from './generate/origin.js';
import type { EgressIpRule } from './types.js';

export function egressIpRules(model: Model): EgressIpRule[] {
  return model.egressIps.map((e) => {
    const namespaces = [...model.namespaces.entries()].filter(([, labels]) => selectorMatches(e.spec.namespaceSelector, labels)).map(([ns]) => ns).sort();
    const callers = model.workloads.filter((w) => w.ip && namespaces.includes(w.namespace) && selectorMatches(e.spec.podSelector, w.labels));
    const callerNamespaces: Record<string, string> = {};
    for (const w of callers) if (w.ip) callerNamespaces[w.ip] = w.namespace;
    return {
      name: e.name,
      sourceAddresses: [...e.spec.egressIPs],
      namespaces,
      callerIps: Object.keys(callerNamespaces).sort(),
      callerNamespaces,
      origin: originOf(e),
    };
  });
}
