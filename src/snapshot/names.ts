/** The one place cluster and listener names are encoded and decoded (Istio's formats). */

/** `outbound|443||edition.cnn.com`, `outbound|80|v1|reviews.default.svc.cluster.local`. */
export function clusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

export function parseClusterName(name: string): { direction: string; port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, host] = parts as [string, string, string, string];
  if (!/^\d+$/.test(port)) return undefined;
  return { direction, port: Number(port), subset, host };
}

export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** Istio names gateway HTTP route tables `http.<port>`; sidecar outbound ones just `<port>`. */
export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}

export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

/** Istio's inbound cluster for a workload port: `inbound|9080||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
