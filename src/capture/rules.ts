/**
 * The traffic-capture rules of a pod's network namespace — what Istio's istio-init container
 * (istio-iptables) writes — from the same options, as iptables-restore input or as an nftables
 * script. Pure: `tollgate init` prints (--dry-run) or applies them (capture/apply.ts).
 *
 * Outbound: every TCP connection from a process that is not the proxy (uid/gid 1337) goes to the
 * proxy's port (15001), except to 127.0.0.1 and excluded CIDRs/ports. The proxy's own connections
 * leave as they are, except those to the pod itself over lo, which go to the inbound port (a pod
 * calling its own Service). Inbound: every TCP connection to the pod goes to 15006, except the
 * excluded ports (15008, 22 and the status ports). Connections from 127.0.0.6 (the proxy talking to
 * its app) are never captured, so nothing loops.
 */

export type InterceptionMode = 'REDIRECT' | 'TPROXY';

export interface CaptureOptions {
  /** -p: outbound capture port. */
  readonly proxyPort: number;
  /** -z: inbound capture port. */
  readonly inboundPort: number;
  /** -u / -g: the proxy's uid and gid, whose traffic is not captured. */
  readonly proxyUid: number;
  readonly proxyGid: number;
  /** -m */
  readonly mode: InterceptionMode;
  /** -i: outbound CIDRs to capture; ['*'] = all. */
  readonly includeOutboundCidrs: readonly string[];
  /** -x: outbound CIDRs never captured. */
  readonly excludeOutboundCidrs: readonly string[];
  /** -b: inbound ports to capture; ['*'] = all. */
  readonly includeInboundPorts: readonly string[];
  /** -d: inbound ports never captured (15008 and 22 are always added, as istio-iptables does). */
  readonly excludeInboundPorts: readonly number[];
  /** -o: outbound ports never captured. */
  readonly excludeOutboundPorts: readonly number[];
}

export const DEFAULT_CAPTURE: CaptureOptions = {
  proxyPort: 15001,
  inboundPort: 15006,
  proxyUid: 1337,
  proxyGid: 1337,
  mode: 'REDIRECT',
  includeOutboundCidrs: ['*'],
  excludeOutboundCidrs: [],
  includeInboundPorts: ['*'],
  excludeInboundPorts: [15090, 15021, 15020],
  excludeOutboundPorts: [],
};

/** TPROXY: packets marked with this go to routing table 133, whose default route is local. */
export const TPROXY_MARK = 1337;
export const TPROXY_TABLE = 133;
const INBOUND_TUNNEL_PORT = 15008;
const SSH_PORT = 22;
const INBOUND_SOURCE = '127.0.0.6/32';

/** Inbound ports never captured: 15008 first, then ssh, then -d (istio-iptables' order). */
export function inboundExclusions(o: CaptureOptions): number[] {
  const out = [INBOUND_TUNNEL_PORT];
  if (!o.excludeInboundPorts.includes(SSH_PORT)) out.push(SSH_PORT);
  for (const p of o.excludeInboundPorts) if (!out.includes(p)) out.push(p);
  return out;
}

const captureAllInbound = (o: CaptureOptions): boolean => o.includeInboundPorts.includes('*');
const captureAllOutbound = (o: CaptureOptions): boolean => o.includeOutboundCidrs.includes('*');
const cidr = (c: string): string => (c.includes('/') ? c : `${c}/32`);

/** iptables-restore input (IPv4), in the order istio-iptables writes it. */
export function iptablesRules(o: CaptureOptions): string {
  const lines: string[] = [];
  const nat: string[] = ['* nat', '-N ISTIO_INBOUND', '-N ISTIO_REDIRECT', '-N ISTIO_IN_REDIRECT', '-N ISTIO_OUTPUT'];
  const inbound: string[] = [];
  const excl = inboundExclusions(o);
  if (o.mode === 'REDIRECT') {
    nat.push(`-A ISTIO_INBOUND -p tcp --dport ${excl[0]} -j RETURN`);
    nat.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.proxyPort}`);
    nat.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);
    if (captureAllInbound(o) || o.includeInboundPorts.length > 0) {
      nat.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
      if (captureAllInbound(o)) {
        for (const p of excl.slice(1)) nat.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
        nat.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
      } else {
        for (const p of o.includeInboundPorts) nat.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_IN_REDIRECT`);
      }
    }
  } else {
    nat.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.proxyPort}`);
    // TPROXY mode: the proxy's hairpin connections to the pod still go to the inbound port by NAT.
    nat.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);
    inbound.push('* mangle', '-N ISTIO_DIVERT', '-N ISTIO_TPROXY', '-N ISTIO_INBOUND');
    inbound.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    // The proxy's own connections to its app (from 127.0.0.6, looped back through lo) are not inbound traffic.
    inbound.push(`-A ISTIO_INBOUND -i lo -s ${INBOUND_SOURCE} -p tcp -j RETURN`);
    if (captureAllInbound(o)) {
      for (const p of excl) inbound.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
      inbound.push('-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT');
      inbound.push('-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY');
    } else {
      for (const p of o.includeInboundPorts) {
        inbound.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT`);
        inbound.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_TPROXY`);
      }
    }
    inbound.push(`-A ISTIO_DIVERT -j MARK --set-xmark 0x${TPROXY_MARK.toString(16)}/0xffffffff`, '-A ISTIO_DIVERT -j ACCEPT');
    inbound.push(`-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port ${o.inboundPort} --on-ip 0.0.0.0 --tproxy-mark 0x${TPROXY_MARK.toString(16)}/0xffffffff`);
    inbound.push('COMMIT');
  }
  nat.push('-A OUTPUT -p tcp -j ISTIO_OUTPUT');
  for (const p of o.excludeOutboundPorts) nat.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`);
  nat.push(`-A ISTIO_OUTPUT -o lo -s ${INBOUND_SOURCE} -j RETURN`);
  for (const [flag, id] of [['uid', o.proxyUid], ['gid', o.proxyGid]] as const) {
    nat.push(`-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --${flag}-owner ${id} -j ISTIO_IN_REDIRECT`);
    nat.push(`-A ISTIO_OUTPUT -o lo -m owner ! --${flag}-owner ${id} -j RETURN`);
    nat.push(`-A ISTIO_OUTPUT -m owner --${flag}-owner ${id} -j RETURN`);
  }
  nat.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const c of o.excludeOutboundCidrs) nat.push(`-A ISTIO_OUTPUT -d ${cidr(c)} -j RETURN`);
  if (captureAllOutbound(o)) {
    nat.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  } else {
    for (const c of o.includeOutboundCidrs) nat.push(`-A ISTIO_OUTPUT -d ${cidr(c)} -j ISTIO_REDIRECT`);
    nat.push('-A ISTIO_OUTPUT -j RETURN');
  }
  nat.push('COMMIT');
  lines.push(...inbound, ...nat);
  return lines.join('\n') + '\n';
}

/** The policy-routing commands TPROXY needs (marked packets are delivered locally). */
export function tproxyRouteCommands(): string[][] {
  return [
    ['ip', '-4', 'rule', 'add', 'fwmark', String(TPROXY_MARK), 'lookup', String(TPROXY_TABLE)],
    ['ip', '-4', 'route', 'add', 'local', 'default', 'dev', 'lo', 'table', String(TPROXY_TABLE)],
  ];
}

export const NFT_TABLE = 'tollgate_capture';

/** The same rules as an nftables script (`nft -f`), in one table of their own. */
export function nftablesRules(o: CaptureOptions): string {
  const excl = inboundExclusions(o);
  const inbound: string[] = [];
  if (o.mode === 'TPROXY') inbound.push(`iifname "lo" ip saddr ${INBOUND_SOURCE} return`);
  if (captureAllInbound(o)) {
    inbound.push(`tcp dport { ${excl.join(', ')} } return`);
    inbound.push(o.mode === 'REDIRECT' ? 'meta l4proto tcp jump istio_in_redirect' : 'meta l4proto tcp jump istio_tproxy');
  } else {
    inbound.push(`tcp dport { ${o.includeInboundPorts.join(', ')} } jump ${o.mode === 'REDIRECT' ? 'istio_in_redirect' : 'istio_tproxy'}`);
  }
  const output: string[] = [];
  if (o.excludeOutboundPorts.length > 0) output.push(`tcp dport { ${o.excludeOutboundPorts.join(', ')} } return`);
  output.push(`oifname "lo" ip saddr ${INBOUND_SOURCE} return`);
  for (const [key, id] of [['skuid', o.proxyUid], ['skgid', o.proxyGid]] as const) {
    output.push(`oifname "lo" ip daddr != 127.0.0.1 meta ${key} ${id} jump istio_in_redirect`);
    output.push(`oifname "lo" meta ${key} != ${id} return`);
    output.push(`meta ${key} ${id} return`);
  }
  output.push('ip daddr 127.0.0.1 return');
  if (o.excludeOutboundCidrs.length > 0) output.push(`ip daddr { ${o.excludeOutboundCidrs.map(cidr).join(', ')} } return`);
  if (captureAllOutbound(o)) output.push('jump istio_redirect');
  else output.push(`ip daddr { ${o.includeOutboundCidrs.map(cidr).join(', ')} } jump istio_redirect`, 'return');
  const chain = (name: string, rules: readonly string[], hook?: string): string =>
    `  chain ${name} {\n${hook ? `    ${hook}\n` : ''}${rules.map((r) => `    ${r}\n`).join('')}  }\n`;
  let script = `table ip ${NFT_TABLE} {\n`;
  script += chain('istio_redirect', [`meta l4proto tcp redirect to :${o.proxyPort}`]);
  script += chain('istio_in_redirect', [`meta l4proto tcp redirect to :${o.inboundPort}`]);
  script += chain('istio_inbound', inbound);
  script += chain('istio_output', output);
  if (o.mode === 'REDIRECT') {
    script += chain('prerouting', ['meta l4proto tcp jump istio_inbound'], 'type nat hook prerouting priority dstnat; policy accept;');
  } else {
    script += chain('istio_tproxy', [`ip daddr != 127.0.0.1 meta l4proto tcp meta mark set ${TPROXY_MARK} tproxy to :${o.inboundPort} accept`]);
    script += chain('prerouting', [`meta l4proto tcp socket transparent 1 meta mark set ${TPROXY_MARK} accept`, 'meta l4proto tcp jump istio_inbound'], 'type filter hook prerouting priority mangle; policy accept;');
  }
  script += chain('output', ['meta l4proto tcp jump istio_output'], 'type nat hook output priority -100; policy accept;');
  script += '}\n';
  return script;
}
