/**
 * Floating source addresses: exactly one replica holds each address at a time.
 *
 * Every replica that may use an address competes for its lease (through the control plane). The
 * winner adds the address to the interface whose subnet contains it, announces it with a
 * gratuitous ARP, and renews every `renewMs`. Safety rule, no two holders ever: the lease is
 * counted from the moment the last successful renewal was SENT (the arbiter received it later,
 * so its expiry is later still), and a holder that has not renewed by `durationMs - marginMs`
 * after that removes the address before anyone else can be granted the lease. On stop the address
 * is removed first and the lease released after, so a standby takes over at once.
 *
 * A replica killed with SIGKILL cannot remove its address; the standby's gratuitous ARP moves the
 * neighbours over, and a replica removes any floating address it finds on its interfaces but
 * does not hold (a restart after a kill). Connections of a dead holder are lost.
 */
import type { Logger } from '../../shared/logger.js';
import type { ManagedAddress } from '../../snapshot/types.js';
import type { MetricsRegistry } from '../observe/metrics.js';
import { parseCidr, parseIp, cidrContains } from '../../net/ip.js';
import { exec, must } from './exec.js';

/** Whoever decides who holds a lease (the control plane's lease API). */
export interface LeaseArbiter {
  acquire(name: string, holder: string, durationMs: number): Promise<{ readonly granted: boolean; readonly lease: { readonly holder: string; readonly previousHolder?: string } }>;
  release(name: string, holder: string): Promise<void>;
}

export interface FloatingOptions {
  readonly arbiter: LeaseArbiter | undefined;
  /** This replica's holder identity (unique among replicas). */
  readonly holder: string;
  readonly durationMs: number;
  readonly renewMs: number;
  /** The address is removed this long before the lease could expire at the arbiter. */
  readonly marginMs: number;
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  readonly now?: () => number;
}

export interface FloatingStatus {
  readonly address: string;
  readonly lease: string;
  readonly source: string;
  readonly held: boolean;
  readonly holder: string;
  /** When this replica took the address (ms since epoch). */
  readonly since?: number;
  /** The last time this replica took the address over from another holder. */
  readonly lastFailover?: { readonly at: number; readonly from: string };
  readonly device?: string;
  readonly lastError?: string;
}

interface Entry {
  readonly managed: ManagedAddress;
  held: boolean;
  device?: string;
  prefix?: number;
  since?: number;
  lastGrantSentAt: number;
  inFlight: boolean;
  lastFailover?: { at: number; from: string };
  lastError?: string;
  /** The arbiter's view: who holds it now (this replica or another), for status. */
  currentHolder: string;
}

export class FloatingAddresses {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly holderGauge;
  private readonly failovers;
  private warnedNoArbiter = false;
  /** Set by stop(): a renewal answered afterwards must not put the address back. */
  private stopped = false;

  constructor(private readonly opts: FloatingOptions) {
    this.now = opts.now ?? Date.now;
    this.holderGauge = opts.metrics.gauge('tollgate_source_address_holder', '1 while this replica holds the floating source address, else 0', ['address', 'holder']);
    this.failovers = opts.metrics.counter('tollgate_source_address_failovers_total', 'Times this replica took a floating source address over from another holder', ['address']);
  }

  /** The floating addresses this snapshot asks for; others are let go. */
  async apply(list: readonly ManagedAddress[]): Promise<void> {
    const wanted = new Map(list.filter((m) => m.managedBy === 'floating').map((m) => [m.address, m]));
    for (const [address, e] of this.entries) {
      if (wanted.has(address)) continue;
      await this.giveUp(e, 'no longer in the snapshot');
      this.entries.delete(address);
    }
    for (const [address, managed] of wanted) {
      if (this.entries.has(address)) continue;
      const e: Entry = { managed, held: false, lastGrantSentAt: -Infinity, inFlight: false, currentHolder: '' };
      await this.locate(e);
      // Found on an interface but not held: a previous run of this replica was killed. Remove it.
      if (e.device && (await this.present(e))) {
        this.opts.logger.warn(`floating address ${address} is on ${e.device} but not held by this replica; removing it`);
        await exec('ip', ['addr', 'del', `${address}/${e.prefix ?? 32}`, 'dev', e.device]);
      }
      this.entries.set(address, e);
      this.holderGauge.labels(address, this.opts.holder).set(0);
    }
    if (this.entries.size > 0 && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.opts.renewMs);
      this.timer.unref();
      this.tick();
    }
  }

  /** Removes every held address, then releases its lease (the standby may take it at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.entries.values()].map((e) => this.giveUp(e, 'stopping')));
    this.entries.clear();
  }

  status(): FloatingStatus[] {
    return [...this.entries.values()].map((e) => ({
      address: e.managed.address,
      lease: e.managed.lease ?? '',
      source: e.managed.source,
      held: e.held,
      holder: e.held ? this.opts.holder : e.currentHolder,
      ...(e.since !== undefined ? { since: e.since } : {}),
      ...(e.lastFailover ? { lastFailover: e.lastFailover } : {}),
      ...(e.device ? { device: e.device } : {}),
      ...(e.lastError ? { lastError: e.lastError } : {}),
    }));
  }

  /** True when this replica holds the address (the data plane may bind it). */
  holds(address: string): boolean {
    return this.entries.get(address)?.held === true;
  }

  private tick(): void {
    const arbiter = this.opts.arbiter;
    if (!arbiter) {
      if (!this.warnedNoArbiter) this.opts.logger.error('floating source addresses need a lease arbiter: run with --control-plane HOST:PORT; until then no address is held and their connections fail closed');
      this.warnedNoArbiter = true;
      return;
    }
    const t = this.now();
    for (const e of this.entries.values()) {
      if (e.held && t - e.lastGrantSentAt >= this.opts.durationMs - this.opts.marginMs) {
        void this.drop(e, `could not renew lease ${e.managed.lease} for ${t - e.lastGrantSentAt} ms${e.lastError ? ` (${e.lastError})` : ''}`);
      }
      if (e.inFlight) continue;
      e.inFlight = true;
      const sentAt = this.now();
      arbiter.acquire(e.managed.lease ?? e.managed.address, this.opts.holder, this.opts.durationMs).then(
        async (r) => {
          e.currentHolder = r.lease.holder;
          delete e.lastError;
          if (this.stopped) {
            if (r.granted) await arbiter.release(e.managed.lease ?? e.managed.address, this.opts.holder).catch(() => undefined);
          } else if (!r.granted) {
            if (e.held) await this.drop(e, `lease ${e.managed.lease} is held by ${r.lease.holder}`);
          } else {
            e.lastGrantSentAt = sentAt;
            if (!e.held) await this.take(e, r.lease.previousHolder);
          }
          // Only now: a take() still adding the address must not overlap the next tick's.
          e.inFlight = false;
        },
        (err: unknown) => {
          e.inFlight = false;
          e.lastError = err instanceof Error ? err.message : String(err);
        },
      );
    }
  }

  private async take(e: Entry, previousHolder: string | undefined): Promise<void> {
    const address = e.managed.address;
    if (!e.device) await this.locate(e);
    if (!e.device) {
      e.lastError = `no interface has a subnet containing ${address}`;
      this.opts.logger.error(`floating address ${address}: ${e.lastError}; releasing the lease`);
      await this.opts.arbiter?.release(e.managed.lease ?? address, this.opts.holder).catch(() => undefined);
      return;
    }
    try {
      if (!(await this.present(e))) await must('ip', ['addr', 'add', `${address}/${e.prefix ?? 32}`, 'dev', e.device]);
    } catch (err) {
      e.lastError = err instanceof Error ? err.message : String(err);
      this.opts.logger.error(`floating address ${address}: ${e.lastError}`);
      return;
    }
    // Check the safety rule again: adding the address took time.
    if (this.now() - e.lastGrantSentAt >= this.opts.durationMs - this.opts.marginMs) {
      await exec('ip', ['addr', 'del', `${address}/${e.prefix ?? 32}`, 'dev', e.device]);
      return;
    }
    e.held = true;
    e.since = this.now();
    this.holderGauge.labels(address, this.opts.holder).set(1);
    if (previousHolder && previousHolder !== this.opts.holder) {
      e.lastFailover = { at: e.since, from: previousHolder };
      this.failovers.labels(address).inc();
    }
    this.opts.logger.info(`floating address ${address}: held on ${e.device}${previousHolder ? ` (taken over from ${previousHolder})` : ''}`);
    void exec('arping', ['-q', '-U', '-c', '1', '-I', e.device, address], undefined, 3000);
  }

  /** Removes the address; keeps competing for the lease. */
  private async drop(e: Entry, why: string): Promise<void> {
    if (!e.held) return;
    e.held = false;
    delete e.since;
    this.holderGauge.labels(e.managed.address, this.opts.holder).set(0);
    if (e.device) await exec('ip', ['addr', 'del', `${e.managed.address}/${e.prefix ?? 32}`, 'dev', e.device]);
    this.opts.logger.warn(`floating address ${e.managed.address}: removed (${why})`);
  }

  private async giveUp(e: Entry, why: string): Promise<void> {
    const wasHeld = e.held;
    await this.drop(e, why);
    if (wasHeld) await this.opts.arbiter?.release(e.managed.lease ?? e.managed.address, this.opts.holder).catch(() => undefined);
  }

  /** The interface whose IPv4/IPv6 subnet contains the address, and that subnet's prefix length. */
  private async locate(e: Entry): Promise<void> {
    const ip = parseIp(e.managed.address);
    if (!ip) return;
    const out = (await exec('ip', ['-o', ip.family === 4 ? '-4' : '-6', 'addr', 'show'])).stdout;
    for (const line of out.split('\n')) {
      const m = /^\d+:\s+(\S+)\s+inet6?\s+(\S+)/.exec(line);
      if (!m) continue;
      const [addr, prefixText] = (m[2] ?? '').split('/');
      if (addr === e.managed.address) continue;
      const cidr = parseCidr(m[2] ?? '');
      if (cidr && cidr.prefix < (ip.family === 4 ? 32 : 128) && cidrContains(cidr, ip)) {
        e.device = (m[1] ?? '').replace(/@.*$/, '');
        e.prefix = Number(prefixText);
        return;
      }
    }
  }

  private async present(e: Entry): Promise<boolean> {
    if (!e.device) return false;
    const out = (await exec('ip', ['-o', 'addr', 'show', 'dev', e.device])).stdout;
    return out.includes(` ${e.managed.address}/`);
  }
}
