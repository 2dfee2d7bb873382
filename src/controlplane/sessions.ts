/**
 * One session per connected proxy: its identity, what was sent, what it acknowledged or refused.
 * The rules (Envoy's): a push carries version + nonce; an ACK names both; a NACK keeps the proxy
 * on its last good version and the same bad version is never pushed to it again.
 */
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export interface SessionView {
  readonly id: string;
  readonly key: string;
  readonly node: ProxyIdentity;
  readonly remote: string;
  readonly connectedAt: number;
  readonly sentVersion?: string;
  readonly ackedVersion?: string;
  readonly nackedVersion?: string;
  readonly lastError?: string;
  /** What the proxy reported missing when it applied its current version (it still serves it). */
  readonly warnings?: readonly string[];
  readonly lastPushAt?: number;
  readonly lastAckAt?: number;
  readonly state: SyncState;
}

export class Session {
  readonly connectedAt = Date.now();
  sentVersion: string | undefined;
  sentNonce: string | undefined;
  ackedVersion: string | undefined;
  nackedVersion: string | undefined;
  lastError: string | undefined;
  warnings: readonly string[] = [];
  lastPushAt: number | undefined;
  lastAckAt: number | undefined;
  /** The snapshot last pushed, served to `proxy-config`. */
  snapshot: Snapshot | undefined;
  private nonceCounter = 0;

  constructor(
    readonly id: string,
    readonly key: string,
    readonly node: ProxyIdentity,
    readonly remote: string,
    private readonly send: (line: string) => void,
  ) {}

  /** Writes a raw protocol line (pings). */
  sendLine(line: string): void {
    this.send(line);
  }

  /** Pushes unless the proxy already has this version, or refused it before. Returns whether it pushed. */
  push(snapshot: Snapshot, encode: (nonce: string) => string): boolean {
    if (snapshot.version === this.sentVersion || snapshot.version === this.nackedVersion) return false;
    const nonce = `${this.id}-${++this.nonceCounter}`;
    this.sentVersion = snapshot.version;
    this.sentNonce = nonce;
    this.snapshot = snapshot;
    this.lastPushAt = Date.now();
    this.send(encode(nonce));
    return true;
  }

  ack(version: string, nonce: string, warnings: readonly string[] = []): void {
    if (nonce !== this.sentNonce) return; // an answer to an older push; the newer one is pending
    this.ackedVersion = version;
    this.warnings = warnings;
    this.lastAckAt = Date.now();
    this.lastError = undefined;
    this.nackedVersion = undefined;
  }

  nack(version: string, nonce: string, error: string): void {
    if (nonce !== this.sentNonce) return;
    this.nackedVersion = version;
    this.lastError = error;
    // The proxy stays on what it acknowledged last; so does our record of it.
    this.sentVersion = this.ackedVersion;
  }

  state(): SyncState {
    if (this.nackedVersion !== undefined) return 'NACKED';
    if (this.sentVersion === undefined) return 'NOT_SENT';
    return this.ackedVersion === this.sentVersion ? 'SYNCED' : 'STALE';
  }

  view(): SessionView {
    return {
      id: this.id,
      key: this.key,
      node: this.node,
      remote: this.remote,
      connectedAt: this.connectedAt,
      ...(this.sentVersion !== undefined ? { sentVersion: this.sentVersion } : {}),
      ...(this.ackedVersion !== undefined ? { ackedVersion: this.ackedVersion } : {}),
      ...(this.nackedVersion !== undefined ? { nackedVersion: this.nackedVersion } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.warnings.length > 0 ? { warnings: this.warnings } : {}),
      ...(this.lastPushAt !== undefined ? { lastPushAt: this.lastPushAt } : {}),
      ...(this.lastAckAt !== undefined ? { lastAckAt: this.lastAckAt } : {}),
      state: this.state(),
    };
  }
}
