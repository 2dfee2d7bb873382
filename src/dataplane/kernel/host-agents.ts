/**
 * What a snapshot asks of the host beyond listeners: the egress router's kernel rules (and, later
 * in the same place, floating source addresses). Applied before the runtime takes the snapshot,
 * so readiness never reports a router whose rules are not in place; undone on stop.
 */
import type { Logger } from '../../shared/logger.js';
import type { Snapshot } from '../../snapshot/types.js';
import type { MetricsRegistry } from '../observe/metrics.js';
import { RouterKernel } from './router-kernel.js';

export interface HostAgentOptions {
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  readonly routerInterface: string;
  readonly routerMacvlanParent?: string;
  /** The proxy's own TCP ports (admin): never redirected by the router's fallback rule. */
  readonly ownPorts: readonly number[];
}

export class HostAgents {
  private router: RouterKernel | undefined;

  constructor(private readonly opts: HostAgentOptions) {}

  async apply(snapshot: Snapshot): Promise<void> {
    const plan = snapshot.routerKernel;
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
  }

  async stop(): Promise<void> {
    await this.router?.stop();
  }
}
