/**
 * The OpenShift egress router (redirect or http-proxy mode): a Deployment whose container env carries
 * EGRESS_SOURCE, EGRESS_GATEWAY, EGRESS_DESTINATION and EGRESS_ROUTER_MODE. Parsed here into
 * typed rules, with a diagnostic pointing at the exact line of a bad EGRESS_DESTINATION entry.
 */
import { isIP } from 'node:net';
import type { Diagnostic, SourcePos } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';
import type { Container, DeploymentSpec } from '../config/types.js';
import { cidrContains, parseCidr, parseIp } from '../net/ip.js';

export interface EgressRouterRule {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly destination: string;
  readonly destinationPort: number;
  readonly pos: SourcePos;
}

export interface HttpProxyRule {
  readonly deny: boolean;
  /** `*`, `*.example.com`, `example.com`, an IP or a CIDR. */
  readonly pattern: string;
  readonly pos: SourcePos;
}

export interface EgressRouter {
  readonly resource: Resource<DeploymentSpec>;
  readonly name: string;
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly replicas: number;
  readonly mode: 'init' | 'legacy' | 'http-proxy' | 'dns-proxy' | 'unidling';
  readonly source?: string;
  /** Prefix length when EGRESS_SOURCE is written `IP/prefix` (the macvlan's subnet). */
  readonly sourcePrefix?: number;
  readonly gateway?: string;
  /**
   * 'kernel': init/legacy mode as OpenShift runs it (nftables DNAT + SNAT, packets never reach
   * Tollgate); 'userspace': Tollgate relays each connection (per-connection logs). Annotation
   * `tollgate.io/router-datapath: kernel|userspace` on the Deployment or its pod template;
   * http-proxy mode is always userspace.
   */
  readonly datapath: 'kernel' | 'userspace';
  readonly rules: readonly EgressRouterRule[];
  readonly fallback?: { readonly destination: string; readonly pos: SourcePos };
  readonly httpProxyRules: readonly HttpProxyRule[];
}

export const ROUTER_DATAPATH_ANNOTATION = 'tollgate.io/router-datapath';
const ROUTER_ENV = ['EGRESS_SOURCE', 'EGRESS_DESTINATION', 'EGRESS_HTTP_PROXY_DESTINATION', 'EGRESS_DNS_PROXY_DESTINATION'];
const MODES = ['init', 'legacy', 'http-proxy', 'dns-proxy', 'unidling'] as const;

/** Returns the router when the Deployment is one (any container with egress-router env), else undefined. */
export function parseEgressRouter(dep: Resource<DeploymentSpec>, out: Diagnostic[]): EgressRouter | undefined {
  const podSpec = dep.spec.template.spec;
  const containers: { c: Container; list: 'initContainers' | 'containers'; i: number }[] = [];
  (podSpec?.initContainers ?? []).forEach((c, i) => containers.push({ c, list: 'initContainers', i }));
  (podSpec?.containers ?? []).forEach((c, i) => containers.push({ c, list: 'containers', i }));
  const found = containers.find(({ c }) => (c.env ?? []).some((e) => ROUTER_ENV.includes(e.name)));
  if (!found) return undefined;

  const envPath = ['spec', 'template', 'spec', found.list, found.i, 'env'];
  const env = found.c.env ?? [];
  const envIndex = (name: string) => env.findIndex((e) => e.name === name);
  const value = (name: string): string | undefined => env[envIndex(name)]?.value;
  const lineOfEnv = (name: string): number => dep.doc.lineOf([...envPath, envIndex(name), 'value']);
  const diag = (line: number, code: string, message: string, hint: string): void => {
    out.push({ severity: 'error', code, message, resource: dep.ref, pos: { file: dep.doc.file, line }, hint });
  };

  const modeRaw = value('EGRESS_ROUTER_MODE') ?? 'legacy';
  const mode = (MODES as readonly string[]).includes(modeRaw) ? (modeRaw as EgressRouter['mode']) : 'legacy';
  if (mode !== modeRaw) diag(lineOfEnv('EGRESS_ROUTER_MODE'), 'TG_ROUTER_BAD_MODE', `EGRESS_ROUTER_MODE "${modeRaw}" is not one of ${MODES.join(', ')}`, 'use init (redirect mode) or http-proxy');

  const sourceText = value('EGRESS_SOURCE')?.trim();
  const [source, prefixText] = sourceText === undefined ? [undefined, undefined] : sourceText.split('/', 2);
  const sourcePrefix = prefixText === undefined ? undefined : Number(prefixText);
  const maxPrefix = isIP(source ?? '') === 6 ? 128 : 32;
  const sourceOk = source !== undefined && isIP(source) !== 0 && (sourcePrefix === undefined || (/^\d{1,3}$/.test(prefixText ?? '') && sourcePrefix <= maxPrefix));
  if (source !== undefined && !sourceOk) {
    diag(lineOfEnv('EGRESS_SOURCE'), 'TG_ROUTER_BAD_SOURCE', `EGRESS_SOURCE "${sourceText}" is not an IP address (or IP/prefix)`, 'set EGRESS_SOURCE to the fixed source IP reserved for this router, e.g. 192.168.12.99 or 192.168.12.99/24');
  }
  const gateway = value('EGRESS_GATEWAY')?.trim();
  if (gateway !== undefined && isIP(gateway) === 0) {
    diag(lineOfEnv('EGRESS_GATEWAY'), 'TG_ROUTER_BAD_GATEWAY', `EGRESS_GATEWAY "${gateway}" is not an IP address`, 'set EGRESS_GATEWAY to the router of EGRESS_SOURCE\'s subnet');
  } else if (gateway !== undefined && sourceOk && source !== undefined && sourcePrefix !== undefined && !onSubnet(gateway, source, sourcePrefix)) {
    diag(lineOfEnv('EGRESS_GATEWAY'), 'TG_ROUTER_GATEWAY_OFF_SUBNET', `EGRESS_GATEWAY ${gateway} is not on EGRESS_SOURCE's subnet ${source}/${sourcePrefix}: the default route through it cannot be installed`, 'use the gateway of the EGRESS_SOURCE subnet, or fix the prefix length');
  }
  const datapathText = dep.annotations[ROUTER_DATAPATH_ANNOTATION] ?? dep.spec.template.metadata?.annotations?.[ROUTER_DATAPATH_ANNOTATION];
  if (datapathText !== undefined && datapathText !== 'kernel' && datapathText !== 'userspace') {
    diag(dep.doc.lineOf(['metadata', 'annotations', ROUTER_DATAPATH_ANNOTATION]), 'TG_ROUTER_BAD_DATAPATH', `${ROUTER_DATAPATH_ANNOTATION}: "${datapathText}" is not kernel or userspace`, 'use kernel (nftables, like OpenShift) or userspace (Tollgate relays and logs each connection)');
  }

  /** The non-empty, comment-stripped lines of a multi-line env value, each with its own file:line. */
  const envLines = (name: string): { raw: string; line: string; pos: SourcePos }[] => {
    const idx = envIndex(name);
    if (idx < 0) return [];
    const firstLine = dep.doc.blockStartLine([...envPath, idx, 'value']) ?? lineOfEnv(name);
    return (env[idx]?.value ?? '')
      .split('\n')
      .map((raw, i) => ({ raw, line: raw.replace(/#.*$/, '').trim(), pos: { file: dep.doc.file, line: firstLine + i } }))
      .filter((l) => l.line !== '');
  };

  const rules: EgressRouterRule[] = [];
  let fallback: EgressRouter['fallback'];
  for (const { raw, line, pos } of envLines('EGRESS_DESTINATION')) {
    const parts = line.split(/\s+/);
    if (parts.length === 1) {
      if (isIP(parts[0] ?? '') === 0) {
        diag(pos.line, 'TG_ROUTER_BAD_RULE', `EGRESS_DESTINATION line "${raw.trim()}" is neither "<port> <tcp|udp> <ip> [<port>]" nor a fallback IP`, 'write e.g. "80 tcp 203.0.113.25" or a bare IP for the fallback');
      } else if (fallback) {
        diag(pos.line, 'TG_ROUTER_BAD_RULE', `second fallback line "${line}"; the first is at line ${fallback.pos.line}`, 'keep one fallback IP line');
      } else {
        fallback = { destination: parts[0] ?? '', pos };
      }
      continue;
    }
    const [portS, proto, ip, dportS, ...rest] = parts;
    const port = Number(portS);
    const dport = dportS === undefined ? port : Number(dportS);
    const problems: string[] = [];
    if (!/^\d+$/.test(portS ?? '') || port < 1 || port > 65535) problems.push(`port "${portS}" is not 1-65535`);
    if (proto !== 'tcp' && proto !== 'udp') problems.push(`protocol "${proto}" is not tcp or udp`);
    if (isIP(ip ?? '') === 0) problems.push(`destination "${ip}" is not an IP address`);
    if (dportS !== undefined && (!/^\d+$/.test(dportS) || dport < 1 || dport > 65535)) problems.push(`destination port "${dportS}" is not 1-65535`);
    if (rest.length > 0) problems.push(`unexpected "${rest.join(' ')}"`);
    if (problems.length > 0) {
      diag(pos.line, 'TG_ROUTER_BAD_RULE', `EGRESS_DESTINATION line "${line}": ${problems.join('; ')}`, 'each line is "<port> <tcp|udp> <destination-ip> [<destination-port>]", or a bare IP as the fallback');
      continue;
    }
    const dup = rules.find((r) => r.port === port && r.protocol === proto);
    if (dup) {
      diag(pos.line, 'TG_ROUTER_BAD_RULE', `port ${port}/${proto} is already forwarded by line ${dup.pos.line}`, 'remove one of the two lines');
      continue;
    }
    rules.push({ port, protocol: proto as 'tcp' | 'udp', destination: ip ?? '', destinationPort: dport, pos });
  }

  const httpProxyRules: HttpProxyRule[] = [];
  for (const { line, pos } of envLines('EGRESS_HTTP_PROXY_DESTINATION')) {
    const deny = line.startsWith('!');
    const pattern = (deny ? line.slice(1) : line).trim().toLowerCase();
    if (!/^(\*|(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|[0-9a-f:.]+(\/\d{1,3})?)$/.test(pattern)) {
      diag(pos.line, 'TG_ROUTER_BAD_RULE', `EGRESS_HTTP_PROXY_DESTINATION line "${line}" is not a host, *.domain, IP, CIDR or *`, 'write one destination per line, prefixed with ! to deny');
      continue;
    }
    httpProxyRules.push({ deny, pattern, pos });
  }

  return {
    resource: dep,
    name: dep.name,
    namespace: dep.namespace,
    podLabels: dep.spec.template.metadata?.labels ?? {},
    replicas: dep.spec.replicas ?? 1,
    mode,
    ...(source ? { source } : {}),
    ...(sourcePrefix !== undefined && !Number.isNaN(sourcePrefix) ? { sourcePrefix } : {}),
    ...(gateway ? { gateway } : {}),
    datapath: mode === 'http-proxy' || datapathText === 'userspace' ? 'userspace' : 'kernel',
    rules,
    ...(fallback ? { fallback } : {}),
    httpProxyRules,
  };
}

function onSubnet(address: string, base: string, prefix: number): boolean {
  const net = parseCidr(`${base}/${prefix}`);
  const ip = parseIp(address);
  return net !== undefined && ip !== undefined && cidrContains(net, ip);
}
