/**
 * What a snapshot asks of the host beyond listeners: the egress router's kernel rules and the
 * floating source addresses this replica competes for. Applied before the runtime takes the
 * snapshot, so readiness never reports a router whose rules are not in place; undone on stop.
 */
import type { Logger } from '../../shared/logger.js';
import type { Snapshot } from '../../snapshot/types.js';
import type { MetricsRegistry } from '../observe/metrics.js';
import { FloatingAddresses, type FloatingStatus, type LeaseArbiter } from './floating.js';
import { RouterKernel } from './router-kernel.js';

export interface HostAgentOptions {
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  readonly routerInterface: string;
  readonly routerMacvlanParent?: string;
  /** The proxy's own TCP ports (admin): never redirected by the router's fallback rule. */
  readonly ownPorts: readonly number[];
  /** Lease arbiter for floating addresses (the control plane); none: floating addresses are never held. */
  readonly arbiter?: LeaseArbiter;
  readonly holder: string;
  readonly lease: { readonly durationMs: number; readonly renewMs: number; readonly marginMs: number };
  /** False in `run --workers N` (N > 1): several processes must not own the same kernel state. */
  readonly singleProcess: boolean;
}

export class HostAgents {
  private router: RouterKernel | undefined;
  private floating: FloatingAddresses | undefined;

  constructor(private readonly opts: HostAgentOptions) {}

  async apply(snapshot: Snapshot): Promise<void> {
    const plan = snapshot.routerKernel;
    if (!this.opts.singleProcess && (plan || (snapshot.managedAddresses ?? []).some((m) => m.managedBy === 'floating'))) {
      throw new Error('the egress router kernel mode and floating source addresses need one process: run with --workers 1');
    }
    if (plan) {
      this.router ??= new RouterKernel({
        device: this.opts.routerInterface,
        ...(this.opts.routerMacvlanParent ? { macvlanParent: this.opts.routerMacvlanParent } : {}),
        keepPorts: this.opts.ownPorts,
        logger: this.opts.logger,
        metrics: this.opts.metrics,
      });
      await this.router.apply(plan);
    } else if (this.router) {
      await this.router.stop();
    }
    const floating = (snapshot.managedAddresses ?? []).filter((m) => m.managedBy === 'floating');
    if (floating.length > 0 || this.floating) {
      this.floating ??= new FloatingAddresses({ arbiter: this.opts.arbiter, holder: this.opts.holder, ...this.opts.lease, logger: this.opts.logger, metrics: this.opts.metrics });
      await this.floating.apply(floating);
    }
  }

  floatingStatus(): FloatingStatus[] {
    return this.floating?.status() ?? [];
  }

  async stop(): Promise<void> {
    await this.floating?.stop();
    await this.router?.stop();
  }
}
