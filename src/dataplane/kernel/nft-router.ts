/**
 * The egress router's kernel path as an nftables ruleset (what OpenShift's init mode does with
 * iptables): packets arriving on any interface but the router interface are DNATed per
 * EGRESS_DESTINATION line, everything else to the fallback line, and everything leaving through
 * the router interface is SNATed to EGRESS_SOURCE. Every rule carries a counter and a comment
 * naming it, so per-rule packets and bytes can be read back. Pure: text in, text out.
 */
import type { RouterKernelPlan } from '../../snapshot/types.js';

export const ROUTER_TABLE = 'tollgate_router';
export const SNAT_RULE = 'snat';

export interface RulesetInput {
  readonly plan: RouterKernelPlan;
  /** The interface that carries EGRESS_SOURCE (traffic from it is never DNATed again). */
  readonly device: string;
  /** TCP ports the fallback must not take: the proxy's own admin port (readiness probes). */
  readonly keepPorts: readonly number[];
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`;

/**
 * One nft transaction that replaces the table atomically: `add` makes sure it exists so that
 * `delete` never fails, then the new table is created. Connections already NATed keep their
 * conntrack entries, so a reconcile does not cut them.
 */
export function routerRuleset(input: RulesetInput): string {
  const { plan, device } = input;
  const dev = quote(device);
  const lines: string[] = [];
  for (const r of plan.rules) {
    lines.push(`    iifname != ${dev} ${r.protocol} dport ${r.port} counter dnat to ${r.destination}:${r.destinationPort} comment ${quote(r.name)}`);
  }
  if (plan.fallback) {
    const keep = input.keepPorts.length > 0 ? ` tcp dport != { ${[...new Set(input.keepPorts)].sort((a, b) => a - b).join(', ')} }` : '';
    lines.push(`    iifname != ${dev} meta l4proto tcp${keep} counter dnat to ${plan.fallback.destination} comment ${quote(plan.fallback.name)}`);
    lines.push(`    iifname != ${dev} meta l4proto != tcp counter dnat to ${plan.fallback.destination} comment ${quote(plan.fallback.name)}`);
  }
  return [
    `add table ip ${ROUTER_TABLE}`,
    `delete table ip ${ROUTER_TABLE}`,
    `table ip ${ROUTER_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...lines,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname ${dev} counter snat to ${plan.source} comment ${quote(SNAT_RULE)}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface RuleCounter {
  readonly packets: number;
  readonly bytes: number;
}

/** `nft -j list table ip tollgate_router` -> counters by rule comment (rules sharing a comment add up). */
export function parseCounters(json: string): Map<string, RuleCounter> {
  const out = new Map<string, RuleCounter>();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  const items = (doc as { nftables?: unknown[] }).nftables ?? [];
  for (const item of items) {
    const rule = (item as { rule?: { comment?: string; expr?: unknown[] } }).rule;
    if (!rule?.comment) continue;
    for (const e of rule.expr ?? []) {
      const c = (e as { counter?: { packets?: number; bytes?: number } }).counter;
      if (!c) continue;
      const prev = out.get(rule.comment) ?? { packets: 0, bytes: 0 };
      out.set(rule.comment, { packets: prev.packets + (c.packets ?? 0), bytes: prev.bytes + (c.bytes ?? 0) });
    }
  }
  return out;
}
