/** Checks on how the proxies are exposed (Services in front of gateways), as installed. */
import type { GatewayModel, Model, VirtualServiceModel } from '../model/build.js';
import type { Check } from './context.js';

function destinationHosts(vs: VirtualServiceModel): string[] {
  return [...(vs.spec.http ?? []), ...(vs.spec.tls ?? []), ...(vs.spec.tcp ?? [])].flatMap((r) => r.route ?? []).map((d) => d.destination.host);
}

/** Gateways that send traffic to hosts outside the mesh (ServiceEntry MESH_EXTERNAL): egress gateways. */
function egressGateways(m: Model): GatewayModel[] {
  return m.gateways.filter((g) => m.virtualServices.some((vs) =>
    vs.gateways.includes(g.key) && destinationHosts(vs).some((h) => m.registry.lookup(h, vs.resource.namespace).some((s) => s.location === 'MESH_EXTERNAL'))));
}

/** One label set contains the other: the Service and the Gateway pick the same pods. */
function sameWorkload(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const within = (x: Readonly<Record<string, string>>, y: Readonly<Record<string, string>>) => Object.keys(x).length > 0 && Object.entries(x).every(([k, v]) => y[k] === v);
  return within(a, b) || within(b, a);
}

/**
 * A LoadBalancer Service in front of an egress gateway hands the gateway's fixed source address
 * and registry to whoever can reach the load balancer — from outside the cluster too: an open relay.
 */
export const egressGatewayExposed: Check = (f) => {
  const egress = egressGateways(f.model);
  if (egress.length === 0) return;
  for (const svc of f.model.kubernetesServices) {
    if (svc.spec.type !== 'LoadBalancer') continue;
    const gw = egress.find((g) => sameWorkload(svc.spec.selector ?? {}, g.selector));
    if (!gw) continue;
    f.report('warning', 'TG_EGRESS_GATEWAY_PUBLIC', svc, ['spec', 'type'],
      `Service ${svc.name}.${svc.namespace} is a LoadBalancer in front of egress Gateway ${gw.key}: anyone who can reach the load balancer can send traffic out through it (an open relay)`,
      'make the egress gateway\'s Service ClusterIP (the egress-gateway profile\'s default) and reach it from inside the cluster only');
  }
};
