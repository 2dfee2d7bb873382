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

export function docs(...parts: string[]): string {
  return parts.join('---\n');
}
