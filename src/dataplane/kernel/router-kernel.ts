/**
 * Egress router kernel (init) mode, as OpenShift runs it: in the router's network namespace,
 * EGRESS_SOURCE goes on the router interface (an existing one, e.g. the macvlan0 OpenShift creates,
 * or a macvlan Tollgate creates on a parent), the default route goes via EGRESS_GATEWAY, IPv4
 * forwarding is on, and nftables DNATs per EGRESS_DESTINATION line and SNATs to EGRESS_SOURCE.
 * Tollgate then stays up: it re-applies the rules when the snapshot changes or when they vanish,
 * exports the nft counters as metrics, and undoes everything it did on stop.
 *
 * The kernel is driven through its own tools, `ip` (iproute2) and `nft` (nftables), so what runs
 * is exactly what an operator would type; see docs/source-address.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { Logger } from '../../shared/logger.js';
import type { MetricsRegistry } from '../observe/metrics.js';
import type { RouterKernelPlan } from '../../snapshot/types.js';
import { exec, execSync, must } from './exec.js';
import { parseCounters, ROUTER_TABLE, routerRuleset } from './nft-router.js';

export interface RouterKernelOptions {
  /** The interface that carries EGRESS_SOURCE (default macvlan0, OpenShift's name). */
  readonly device: string;
  /** Create `device` as a macvlan on this interface when it does not exist (removed on stop). */
  readonly macvlanParent?: string;
  /** TCP ports the fallback rule must leave alone (the admin port). */
  readonly keepPorts: readonly number[];
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  /** How often the table is checked and re-applied if something removed it (ms). */
  readonly checkIntervalMs?: number;
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

export class RouterKernel {
  private plan: RouterKernelPlan | undefined;
  private createdDevice = false;
  private addedAddress: string | undefined;
  private savedDefaultRoute: string[] | undefined;
  private savedForward: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tableApplied = false;

  constructor(private readonly opts: RouterKernelOptions) {
    const packets = opts.metrics.counter('tollgate_router_rule_packets_total', 'Packets matched by each egress router kernel rule (nftables counter)', ['rule']);
    const bytes = opts.metrics.counter('tollgate_router_rule_bytes_total', 'Bytes matched by each egress router kernel rule (nftables counter)', ['rule']);
    packets.collect = () => {
      if (!this.tableApplied) return;
      const r = execSync('nft', ['-j', 'list', 'table', 'ip', ROUTER_TABLE]);
      if (r.code !== 0) return;
      for (const [rule, c] of parseCounters(r.stdout)) {
        packets.labels(rule).value = c.packets;
        bytes.labels(rule).value = c.bytes;
      }
    };
  }

  /** Programs (or re-programs) the kernel for this plan; throws, leaving the previous state, when it cannot. */
  async apply(plan: RouterKernelPlan): Promise<void> {
    if (!isIPv4(plan.source)) throw new Error(`EGRESS_SOURCE ${plan.source}: the kernel router supports IPv4 (as OpenShift's does)`);
    if (plan.gateway !== undefined && !isIPv4(plan.gateway)) throw new Error(`EGRESS_GATEWAY ${plan.gateway} is not IPv4`);
    const same = this.plan && JSON.stringify(this.plan) === JSON.stringify(plan);
    if (same) return;
    await this.ensureDevice();
    const dev = this.opts.device;
    const prefix = plan.sourcePrefix ?? 32;
    if (this.addedAddress && this.addedAddress !== `${plan.source}/${prefix}`) {
      await exec('ip', ['addr', 'del', this.addedAddress, 'dev', dev]);
      this.addedAddress = undefined;
    }
    if (!(await this.hasAddress(plan.source))) {
      await must('ip', ['addr', 'add', `${plan.source}/${prefix}`, 'dev', dev]);
      this.addedAddress = `${plan.source}/${prefix}`;
    }
    await must('ip', ['link', 'set', dev, 'up']);
    if (plan.gateway) await this.routeVia(plan.gateway, prefix);
    if (this.savedForward === undefined) {
      this.savedForward = readFileSync(IP_FORWARD, 'utf8').trim();
      // Already on (a pod's net.ipv4.ip_forward sysctl): /proc/sys is read-only in an unprivileged container.
      if (this.savedForward !== '1') writeFileSync(IP_FORWARD, '1');
    }
    await must('nft', ['-f', '-'], routerRuleset({ plan, device: dev, keepPorts: this.opts.keepPorts }));
    this.tableApplied = true;
    // Neighbours may still map the address to a previous holder's MAC: announce it (best effort).
    void exec('arping', ['-q', '-U', '-c', '1', '-I', dev, plan.source], undefined, 3000);
    this.plan = plan;
    this.opts.logger.info(`egress router kernel path: ${plan.rules.length} DNAT rule(s)${plan.fallback ? ` + fallback to ${plan.fallback.destination}` : ''}, SNAT to ${plan.source} on ${dev}${plan.gateway ? `, default route via ${plan.gateway}` : ''}`);
    this.timer ??= setInterval(() => void this.keepInPlace(), this.opts.checkIntervalMs ?? 5000);
    this.timer.unref();
  }

  /** Removes what apply added: the table, the route, the address, the macvlan, ip_forward. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const dev = this.opts.device;
    if (this.tableApplied) await exec('nft', ['delete', 'table', 'ip', ROUTER_TABLE]);
    this.tableApplied = false;
    if (this.savedDefaultRoute !== undefined) {
      await exec('ip', ['route', 'del', 'default']);
      if (this.savedDefaultRoute.length > 0) await exec('ip', ['route', 'add', ...this.savedDefaultRoute]);
      this.savedDefaultRoute = undefined;
    }
    if (this.addedAddress) await exec('ip', ['addr', 'del', this.addedAddress, 'dev', dev]);
    this.addedAddress = undefined;
    if (this.createdDevice) await exec('ip', ['link', 'del', dev]);
    this.createdDevice = false;
    if (this.savedForward !== undefined && this.savedForward !== '1') writeFileSync(IP_FORWARD, this.savedForward);
    this.savedForward = undefined;
    this.plan = undefined;
  }

  private async keepInPlace(): Promise<void> {
    const plan = this.plan;
    if (!plan) return;
    const r = await exec('nft', ['list', 'table', 'ip', ROUTER_TABLE]);
    if (r.code === 0) return;
    this.opts.logger.warn(`egress router: nft table ${ROUTER_TABLE} is gone; re-applying it`);
    this.plan = undefined;
    await this.apply(plan).catch((e: unknown) => this.opts.logger.error(`egress router: re-apply failed: ${String(e)}`));
  }

  private async ensureDevice(): Promise<void> {
    const dev = this.opts.device;
    if ((await exec('ip', ['link', 'show', 'dev', dev])).code === 0) return;
    const parent = this.opts.macvlanParent;
    if (!parent) throw new Error(`router interface ${dev} does not exist (OpenShift creates macvlan0 for pods annotated pod.network.openshift.io/assign-macvlan; elsewhere pass --router-macvlan-parent IFACE)`);
    await must('ip', ['link', 'add', dev, 'link', parent, 'type', 'macvlan', 'mode', 'bridge']);
    this.createdDevice = true;
  }

  private async hasAddress(address: string): Promise<boolean> {
    const out = await must('ip', ['-o', '-4', 'addr', 'show', 'dev', this.opts.device]);
    return out.split('\n').some((l) => l.includes(` ${address}/`));
  }

  /**
   * Default route via the gateway. With a /32 source (OpenShift's form) the gateway gets an
   * on-link host route first; with IP/prefix the gateway must be inside the prefix (checked by the
   * model) and the connected route covers it.
   */
  private async routeVia(gateway: string, prefix: number): Promise<void> {
    const dev = this.opts.device;
    if (prefix === 32) await must('ip', ['route', 'replace', `${gateway}/32`, 'dev', dev]);
    if (this.savedDefaultRoute === undefined) {
      const current = (await exec('ip', ['route', 'show', 'default'])).stdout.split('\n')[0]?.trim() ?? '';
      this.savedDefaultRoute = current === '' ? [] : current.split(/\s+/);
    }
    await must('ip', ['route', 'replace', 'default', 'via', gateway, 'dev', dev]);
  }
}
