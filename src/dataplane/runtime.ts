/**
 * The data plane runtime: runs one CompiledSnapshot at a time.
 *
 *   warm   compile the new snapshot once; bind the listeners it adds (a bind failure rejects the
 *          whole snapshot and the previous one keeps running)
 *   swap   one reference per listener + the cluster manager's snapshot; connections already
 *          accepted keep the snapshot they started with (snapshots are never mutated)
 *   drain  listeners the new snapshot no longer has stop accepting; their open connections end on
 *          their own or are destroyed after the drain timeout
 *
 * Listener identity across snapshots is (bound address, snapshot port): a listener whose chains
 * changed keeps its socket, so long-lived tunnels survive unrelated reloads.
 */
import { TollgateError, errorMessage } from '../shared/errors.js';
import type { Snapshot } from '../snapshot/types.js';
import type { DataPlaneServices, HttpConnectionHandler, HttpConnectionHandlerFactory } from './context.js';
import { createHttpHandler } from './http/engine.js';
import type { ConnectionBudget } from './listener/connection-budget.js';
import { ListenerRuntime } from './listener/listener.js';
import { compileDownstreamTls, DOWNSTREAM_TLS } from './listener/tls-store.js';
import { CompiledSnapshot } from './route/compile.js';
import { originalDestinationReader } from './listener/capture.js';

export interface RuntimeOptions {
  readonly listenAddressOverride?: string;
  readonly portMap?: ReadonlyMap<number, number>;
  readonly drainTimeoutMs?: number;
  readonly maxConnectionsPerListener?: number;
  /** Downstream connections of all listeners together (the open-file budget); unset = no process-wide bound. */
  readonly connectionBudget?: ConnectionBudget;
  readonly httpHandler?: HttpConnectionHandlerFactory;
  readonly services: DataPlaneServices;
  /** Ports of this process that are not data-plane listeners (admin): never dialed. */
  readonly extraSelfPorts?: readonly number[];
  /**
   * Sidecar capture (Istio's interceptionMode): REDIRECT reads SO_ORIGINAL_DST; TPROXY makes the
   * virtual listeners transparent and takes the local address as the original destination.
   */
  readonly interceptionMode?: InterceptionMode;
  /** Called after each snapshot is applied (the serving process collects the apply's garbage). */
  readonly afterApply?: () => void;
}

export type InterceptionMode = 'REDIRECT' | 'TPROXY';

export interface BoundListenerInfo {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly boundAddress: string;
  readonly boundPort: number;
  readonly activeConnections: number;
  readonly draining: boolean;
  readonly filterChains: readonly string[];
}

export interface ApplyResult {
  readonly version: string;
  /** What the snapshot needs that this host lacks but is not a reason to reject it (missing source addresses). */
  readonly warnings: readonly string[];
  readonly added: readonly string[];
  readonly kept: readonly string[];
  readonly removed: readonly string[];
}

export class Runtime {
  private readonly opts: RuntimeOptions;
  private readonly active = new Map<string, ListenerRuntime>();
  private readonly drainingListeners = new Set<ListenerRuntime>();
  private readonly http: HttpConnectionHandler;
  private compiled: CompiledSnapshot | undefined;
  private isReady = false;
  private applyWarnings: readonly string[] = [];
  private shuttingDown = false;
  private extraSelf: number[];

  constructor(opts: RuntimeOptions) {
    this.opts = opts;
    // The HTTP engine (src/dataplane/http/engine.ts); listener/http-placeholder.ts is the 503 stand-in tests may pass.
    this.http = (opts.httpHandler ?? createHttpHandler)(opts.services);
    this.extraSelf = [...(opts.extraSelfPorts ?? [])];
    this.originalDestination = originalDestinationReader(opts.interceptionMode ?? 'REDIRECT', opts.services.logger);
  }

  private readonly originalDestination: ReturnType<typeof originalDestinationReader>;

  get current(): CompiledSnapshot | undefined {
    return this.compiled;
  }

  /** Warnings of the snapshot being served (admin /ready, control-plane ACK). */
  get warnings(): readonly string[] {
    return this.applyWarnings;
  }

  get ready(): boolean {
    return this.isReady && !this.shuttingDown;
  }

  get services(): DataPlaneServices {
    return this.opts.services;
  }

  addSelfPort(port: number): void {
    this.extraSelf.push(port);
    this.updateSelfPorts();
  }

  private bindAddress(address: string): string {
    return this.opts.listenAddressOverride ?? address;
  }

  private bindPort(port: number): number {
    return this.opts.portMap?.get(port) ?? port;
  }

  async apply(snapshot: Snapshot): Promise<ApplyResult> {
    if (this.shuttingDown) throw new TollgateError('TG_RUNTIME_SHUTTING_DOWN', 'the runtime is shutting down; snapshot not applied');
    const metrics = this.opts.services.metrics;
    let compiled: CompiledSnapshot;
    try {
      compiled = new CompiledSnapshot(snapshot);
      compiled.attach(DOWNSTREAM_TLS, compileDownstreamTls(compiled));
      this.opts.services.clusters.prepare(compiled);
      this.http.compile?.(compiled);
    } catch (e) {
      metrics.snapshotApplied.labels('rejected').inc();
      throw new TollgateError('TG_SNAPSHOT_COMPILE', `snapshot ${snapshot.version} does not compile: ${errorMessage(e)}`, { source: 'config', cause: e });
    }
    // warm
    const next = new Map<string, { lr: ListenerRuntime; isNew: boolean }>();
    const fresh: ListenerRuntime[] = [];
    for (const cl of compiled.listeners.values()) {
      const l = cl.listener;
      // Reached only through the virtual outbound listener; a port map binds it anyway (a sidecar
      // run outside a pod, where clients dial its ports directly).
      if (l.bindToPort === false && !this.opts.portMap?.has(l.port)) continue;
      const key = `${this.bindAddress(l.address)}|${l.port}`;
      if (next.has(key)) continue; // two listeners on one bind key: the first (sorted by name) wins
      const existing = this.active.get(key);
      if (existing) {
        next.set(key, { lr: existing, isNew: false });
        continue;
      }
      const lr = new ListenerRuntime(
        { snapshot: compiled, listener: cl },
        {
          boundAddress: this.bindAddress(l.address),
          boundPort: this.bindPort(l.port),
          maxConnections: this.opts.maxConnectionsPerListener ?? 16384,
          ...(this.opts.connectionBudget ? { budget: this.opts.connectionBudget } : {}),
          services: this.opts.services,
          http: this.http,
          ...(l.useOriginalDst || l.inboundCapture ? { originalDestination: this.originalDestination, transparent: this.opts.interceptionMode === 'TPROXY' } : {}),
        },
      );
      next.set(key, { lr, isNew: true });
      fresh.push(lr);
    }
    const results = await Promise.allSettled(fresh.map((lr) => lr.bind()));
    const failed = results.map((r, i) => (r.status === 'rejected' ? `${fresh[i]!.name} on ${fresh[i]!.boundAddress}:${fresh[i]!.boundPort}: ${errorMessage(r.reason)}` : undefined)).filter((x): x is string => x !== undefined);
    if (failed.length > 0) {
      await Promise.all(fresh.map((lr) => lr.close()));
      metrics.snapshotApplied.labels('rejected').inc();
      throw new TollgateError('TG_LISTENER_BIND', `snapshot ${snapshot.version} rejected, cannot bind: ${failed.join('; ')}`, { source: 'internal' });
    }
    // swap
    this.opts.services.clusters.setSnapshot(compiled);
    const kept: string[] = [];
    const added: string[] = [];
    for (const [key, { lr, isNew }] of next) {
      const cl = [...compiled.listeners.values()].find((c) => `${this.bindAddress(c.listener.address)}|${c.listener.port}` === key)!;
      lr.state = { snapshot: compiled, listener: cl };
      if (!isNew) lr.revalidateTunnels();
      (isNew ? added : kept).push(cl.listener.name);
    }
    // drain
    const removed: string[] = [];
    for (const [key, lr] of this.active) {
      if (next.has(key)) continue;
      removed.push(lr.name);
      lr.closeTunnels();
      this.drainListener(lr);
    }
    this.active.clear();
    for (const [key, { lr }] of next) this.active.set(key, lr);
    this.compiled = compiled;
    this.updateSelfPorts();
    this.isReady = true;
    metrics.snapshotApplied.labels('ok').inc();
    this.opts.services.logger.info('snapshot applied', { version: snapshot.version, added, kept, removed });
    this.opts.afterApply?.();
    const warnings = this.reportSourceAddresses(compiled);
    return { version: snapshot.version, added, kept, removed, warnings };
  }

  /**
   * Source addresses are checked when a snapshot is applied and reported (log, metric, /ready
   * detail, the ACK to the control plane); routes that need a missing one keep failing closed per
   * connection (UF source_address_unavailable), so an address assigned later just starts working.
   */
  private reportSourceAddresses(compiled: CompiledSnapshot): string[] {
    const services = this.opts.services;
    const problems = services.clusters.missingSourceAddresses(compiled);
    const gauge = services.metrics.sourceAddressUnavailable;
    gauge.reset();
    const warnings = problems.map((p) => `source address ${p.address} is not assigned on this host (used by ${p.usedBy.join(', ')}); connections that need it fail closed (UF source_address_unavailable)`);
    for (const p of problems) gauge.labels(p.address).set(1);
    for (const w of warnings) services.logger.warn(w);
    this.applyWarnings = warnings;
    return warnings;
  }

  private updateSelfPorts(): void {
    const self: (number | { address: string; port: number })[] = [...this.extraSelf];
    for (const lr of this.active.values()) self.push({ address: lr.boundAddress, port: lr.boundPort });
    this.opts.services.clusters.setSelfPorts(self);
  }

  private drainListener(lr: ListenerRuntime): void {
    this.drainingListeners.add(lr);
    void lr.close().then(() => {
      const timeout = this.opts.drainTimeoutMs ?? 30_000;
      const deadline = Date.now() + timeout;
      const check = (): void => {
        if (lr.sockets.size === 0) {
          this.drainingListeners.delete(lr);
          return;
        }
        if (Date.now() >= deadline) {
          lr.destroyAll();
          this.drainingListeners.delete(lr);
          return;
        }
        setTimeout(check, 100).unref();
      };
      check();
    });
  }

  listeners(): BoundListenerInfo[] {
    const out: BoundListenerInfo[] = [];
    const add = (lr: ListenerRuntime): void => {
      const l = lr.state.listener.listener;
      out.push({
        name: l.name,
        address: l.address,
        port: l.port,
        boundAddress: lr.boundAddress,
        boundPort: lr.boundPort,
        activeConnections: lr.sockets.size,
        draining: lr.draining,
        filterChains: [...l.filterChains.map((c) => c.name), ...(l.defaultFilterChain ? [`${l.defaultFilterChain.name} (default)`] : [])],
      });
    };
    for (const lr of this.active.values()) add(lr);
    for (const lr of this.drainingListeners) add(lr);
    return out;
  }

  /** The bound port of a snapshot listener, by snapshot port (tests, port map 0). */
  boundPortOf(snapshotPort: number): number | undefined {
    for (const lr of this.active.values()) if (lr.state.listener.listener.port === snapshotPort) return lr.boundPort;
    return undefined;
  }

  openConnections(): number {
    let n = 0;
    for (const lr of this.active.values()) n += lr.sockets.size;
    for (const lr of this.drainingListeners) n += lr.sockets.size;
    return n;
  }

  /** SIGTERM: readiness fails, listeners close, in-flight connections get drainTimeoutMs, then are destroyed. */
  async shutdown(drainTimeoutMs = this.opts.drainTimeoutMs ?? 30_000): Promise<void> {
    this.shuttingDown = true;
    this.http.drain?.();
    const all = [...this.active.values(), ...this.drainingListeners];
    await Promise.all(all.map((lr) => lr.close()));
    const deadline = Date.now() + drainTimeoutMs;
    while (Date.now() < deadline && all.some((lr) => lr.sockets.size > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const lr of all) lr.destroyAll();
    this.opts.services.clusters.dns.cancel();
  }
}
