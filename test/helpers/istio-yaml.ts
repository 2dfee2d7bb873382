/** Small builders for the Istio objects tests write again and again (one line each, flow style). */

const head = (kind: string, name: string, ns: string) => `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${ns}}\n`;

/** A ServiceEntry with one port and one STATIC endpoint on 127.0.0.1:endpointPort. */
export function staticEntry(name: string, ns: string, host: string, port: number, protocol: string, endpointPort: number): string {
  const portName = protocol.toLowerCase();
  return `${head('ServiceEntry', name, ns)}spec: {hosts: [${host}], ports: [{number: ${port}, name: ${portName}, protocol: ${protocol}}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {${portName}: ${endpointPort}}}]}\n`;
}

/** A Gateway selecting `app: <app>`; servers as `port/PROTOCOL/host[,host]`, e.g. '80/HTTP/shop.test'. */
export function gateway(name: string, ns: string, app: string, ...servers: string[]): string {
  const list = servers.map((s) => {
    const [port, protocol, hosts] = s.split('/');
    return `  - {port: {number: ${port}, name: ${(protocol ?? '').toLowerCase()}-${port}, protocol: ${protocol}}, hosts: [${(hosts ?? '').split(',').map((h) => JSON.stringify(h)).join(', ')}]}`;
  });
  return `${head('Gateway', name, ns)}spec:\n  selector: {app: ${app}}\n  servers:\n${list.join('\n')}\n`;
}

/** A VirtualService bound to `gateways`; `routes` is the YAML after `spec:` hosts/gateways, indented two spaces. */
export function virtualService(name: string, ns: string, hosts: string[], gateways: string[], routes: string): string {
  return `${head('VirtualService', name, ns)}spec:\n  hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]\n  gateways: [${gateways.join(', ')}]\n${routes.replace(/^/gm, '  ')}\n`;
}

/** A flow-style endpoint with an `http` port (and optional labels, e.g. 'version: v1') for externalEntry. */
export function httpEndpoint(address: string, port: number, labels?: string): string {
  return `{address: ${address}, ports: {http: ${port}}${labels !== undefined ? `, labels: {${labels}}` : ''}}`;
}

/**
 * A MESH_EXTERNAL STATIC ServiceEntry for `<name>.test` on port 80/HTTP with the given endpoints
 * (see httpEndpoint), followed by a `---` separator.
 */
export function externalEntry(name: string, endpoints: readonly string[], ns = 'egress'): string {
  return `${head('ServiceEntry', name, ns)}spec:
  hosts: [${name}.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [${endpoints.join(', ')}]
---
`;
}

/** A Gateway (default name `egress`) selecting `istio: egressgateway` with one HTTP server on port 80 for `hosts`, followed by `---`. */
export function egressGateway(hosts: readonly string[], ns = 'egress', name = 'egress'): string {
  return `${head('Gateway', name, ns)}spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]}]
---
`;
}

/**
 * A STATIC ServiceEntry for `host` on port 80/HTTP whose endpoints are bare addresses reached on
 * `targetPort`, followed by `---`; `meshExternal` adds `location: MESH_EXTERNAL`.
 */
export function targetPortEntry(name: string, ns: string, host: string, addresses: readonly string[], targetPort: number, meshExternal = false): string {
  return addressEntry(name, ns, host, addresses, { targetPort, meshExternal });
}

/**
 * A STATIC ServiceEntry for `host` on port 80/HTTP whose endpoints are bare addresses (reached on
 * `targetPort` if given, else 80), followed by `---`; `annotations` is a flow map body.
 */
export function addressEntry(name: string, ns: string, host: string, addresses: readonly string[], o: { targetPort?: number; meshExternal?: boolean; annotations?: string } = {}): string {
  const metadata = o.annotations !== undefined ? `metadata: {name: ${name}, namespace: ${ns}, annotations: {${o.annotations}}}\n` : `metadata: {name: ${name}, namespace: ${ns}}\n`;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
${metadata}spec:
  hosts: [${host}]
  ports: [{number: 80, name: http, protocol: HTTP${o.targetPort !== undefined ? `, targetPort: ${o.targetPort}` : ''}}]
${o.meshExternal === true ? '  location: MESH_EXTERNAL\n' : ''}  resolution: STATIC
  endpoints: [${addresses.map((a) => `{address: ${a}}`).join(', ')}]
---
`;
}

/**
 * The OpenShift egress router Deployment `egress-http-proxy` (namespace default) in http-proxy mode:
 * EGRESS_SOURCE `source` and one EGRESS_HTTP_PROXY_DESTINATION entry per line of `destinations`.
 */
export function httpProxyRouter(source: string, destinations: readonly string[]): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: egress-http-proxy, namespace: default }
spec:
  selector: { matchLabels: { app: egress-http-proxy } }
  template:
    metadata: { labels: { app: egress-http-proxy } }
    spec:
      containers:
      - name: egress-router
        image: openshift3/ose-egress-http-proxy
        env:
        - name: EGRESS_SOURCE
          value: ${source}
        - name: EGRESS_ROUTER_MODE
          value: http-proxy
        - name: EGRESS_HTTP_PROXY_DESTINATION
          value: |
${destinations.map((d) => `            ${d}\n`).join('')}`;
}

export function docs(...parts: string[]): string {
  return parts.join('---\n');
}

/**
 * The egress gateway as a cluster already has it before any egress config: its Deployment (pods
 * labelled istio=egressgateway), its Service (80, 443) and, with `endpointIp`, the Service's Endpoints.
 */
export function gatewayWorkload(name = 'istio-egressgateway', ns = 'istio-system', endpointIp?: string): string {
  const base = `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  template:
    metadata: {labels: {istio: egressgateway}}
    spec: {containers: [{name: proxy, image: tollgate}]}
---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80}, {name: tls, port: 443}]
`;
  if (endpointIp === undefined) return base;
  return `${base}---
apiVersion: v1
kind: Endpoints
metadata: {name: ${name}, namespace: ${ns}}
subsets:
- addresses: [{ip: ${endpointIp}}]
  ports: [{name: http, port: 80}, {name: tls, port: 443}]
`;
}

/** A STATIC ServiceEntry for `host` port 80 declared GRPC, reaching `address:targetPort`. */
export function grpcEntry(name: string, ns: string, host: string, address: string, targetPort: number, meshExternal = false): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: grpc, protocol: GRPC, targetPort: ${targetPort}}]
${meshExternal ? '  location: MESH_EXTERNAL\n' : ''}  resolution: STATIC
  endpoints: [{address: ${address}}]
---
`;
}
