/**
 * The proxy side of the stream (`tollgate run --control-plane HOST:PORT`): says hello with its
 * identity, applies each snapshot through the runtime, ACKs what it applied and NACKs what it could
 * not (keeping the last good one), and reconnects with exponential backoff and full jitter when
 * the control plane goes away — serving its last snapshot meanwhile.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { nodeHttps } from '../shared/lazy-builtins.js';
import { shareValues } from '../snapshot/share-values.js';
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';
import { encode, LineDecoder, STREAM_PATH, type ControlMessage } from './protocol.js';
import { explainUntrustedControlPlane, isUntrustedChainError } from './trust-check.js';

export interface SnapshotApplier {
  /** Resolves when the snapshot serves traffic; rejects (and keeps the old one) when it cannot. */
  apply(snapshot: Snapshot): Promise<{ readonly warnings?: readonly string[] } | void>;
}

export interface ClientOptions {
  readonly host: string;
  readonly port: number;
  readonly node: ProxyIdentity;
  readonly applier: SnapshotApplier;
  /**
   * Verify the control plane's certificate against these roots (PEM; a function is read at every
   * connect, so roots learnt during a CA rotation are used); unset = plaintext (in-process tests only).
   */
  readonly ca?: string | Buffer | (() => string | Buffer);
  /** The file `ca` comes from, named when the control plane's chain does not verify against it. */
  readonly caFile?: string;
  /** The CA's roots and current signer, on connect and when they change (the workload-certificate client renews if needed). */
  readonly onTrust?: (rootCertsPem: string, signerSha256: string | undefined) => void;
  /** The bearer token, read at every connect (a projected service-account token rotates). */
  readonly token?: () => string;
  readonly log?: (line: string) => void;
  /** Problems the operator must fix (default: `log`). */
  readonly logError?: (line: string) => void;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** No message (snapshot or ping) for this long: the stream is considered dead and reopened. */
  readonly silenceTimeoutMs?: number;
}

export class ControlPlaneClient {
  private req: ClientRequest | undefined;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private applying: Promise<void> = Promise.resolve();
  private latest: { snapshot: Snapshot; nonce: string } | undefined;
  private applied: string | undefined;
  private isConnected = false;
  /** The last untrusted-chain explanation logged: said once until it changes or a connect succeeds. */
  private trustProblem: string | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ClientOptions) {
    this.log = opts.log ?? (() => undefined);
  }

  get appliedVersion(): string | undefined {
    return this.applied;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.req?.destroy();
  }

  private connect(): void {
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' };
    try {
      const token = this.opts.token?.();
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    } catch (err) {
      this.log(`cannot read the control-plane token: ${err instanceof Error ? err.message : String(err)}; connecting without one`);
    }
    const target = { host: this.opts.host, port: this.opts.port, method: 'POST', path: STREAM_PATH, headers };
    const ca = typeof this.opts.ca === 'function' ? this.opts.ca() : this.opts.ca;
    const req = ca !== undefined ? nodeHttps().request({ ...target, ca, minVersion: 'TLSv1.2' }) : request(target);
    this.req = req;
    req.setNoDelay(true);
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        this.log(`control plane answered ${res.statusCode}${res.statusCode === 401 ? ' (the token was refused; check --bootstrap-token-file)' : ''}; retrying`);
        res.resume();
        req.destroy();
        return;
      }
      this.isConnected = true;
      this.trustProblem = undefined;
      this.log(`connected to control plane ${this.opts.host}:${this.opts.port}`);
      this.armSilence();
      const decoder = new LineDecoder((line) => this.onLine(line));
      res.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (err) {
          this.log(`bad stream from control plane: ${String(err)}`);
          req.destroy();
        }
      });
      res.on('close', () => req.destroy());
    });
    req.on('error', (err) => {
      if (ca !== undefined && this.opts.caFile !== undefined && isUntrustedChainError(err)) void this.explainUntrusted(this.opts.caFile, ca.toString());
      else this.log(`control plane stream: ${err.message}`);
    });
    req.on('close', () => this.onClosed(req));
    req.write(encode({ type: 'hello', node: this.opts.node, ...(this.applied ? { appliedVersion: this.applied } : {}) }));
  }

  private async explainUntrusted(caFile: string, trusted: string): Promise<void> {
    const message = await explainUntrustedControlPlane(this.opts.host, this.opts.port, caFile, trusted);
    if (this.stopped) return;
    if (message === this.trustProblem) return this.log('control plane stream: its certificate is still not trusted (see above); retrying');
    this.trustProblem = message;
    (this.opts.logError ?? this.log)(message);
  }

  private onClosed(req: ClientRequest): void {
    if (this.req !== req) return;
    this.isConnected = false;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (this.stopped) return;
    // Full jitter: a random delay in [0, min(max, initial * 2^attempt)), so 100 proxies do not
    // reconnect in lockstep after a control-plane restart.
    const ceiling = Math.min(this.opts.maxBackoffMs ?? 10_000, (this.opts.initialBackoffMs ?? 250) * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    const delay = Math.floor(Math.random() * ceiling);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  private armSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    const ms = this.opts.silenceTimeoutMs ?? 45_000;
    this.silenceTimer = setTimeout(() => {
      this.log(`no message from the control plane for ${ms} ms; reconnecting`);
      this.req?.destroy();
    }, ms);
    this.silenceTimer.unref();
  }

  private send(msg: Parameters<typeof encode>[0]): void {
    if (this.req && !this.req.destroyed) this.req.write(encode(msg));
  }

  private onLine(line: string): void {
    this.armSilence();
    this.attempt = 0;
    let msg: ControlMessage;
    try {
      msg = JSON.parse(line) as ControlMessage;
    } catch {
      this.log('control plane sent a line that is not JSON; ignoring it');
      return;
    }
    if (msg.type === 'ping') this.send({ type: 'pong' });
    else if (msg.type === 'error') this.log(`control plane error: ${msg.error}`);
    else if (msg.type === 'trust') this.opts.onTrust?.(msg.rootCertsPem, msg.signerSha256);
    else if (msg.type === 'snapshot') {
      // Only the newest snapshot matters: if several arrive while one is applying, the rest are skipped.
      this.latest = { snapshot: shareValues(msg.snapshot), nonce: msg.nonce };
      this.applying = this.applying.then(() => this.applyLatest());
    }
  }

  private async applyLatest(): Promise<void> {
    const next = this.latest;
    if (!next) return;
    this.latest = undefined;
    const { snapshot, nonce } = next;
    const problem = checkShape(snapshot);
    if (problem) {
      this.send({ type: 'nack', version: String((snapshot as { version?: unknown }).version), nonce, error: problem });
      return;
    }
    try {
      const r = await this.opts.applier.apply(snapshot);
      this.applied = snapshot.version;
      const warnings = r?.warnings ?? [];
      this.send({ type: 'ack', version: snapshot.version, nonce, ...(warnings.length > 0 ? { warnings } : {}) });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.log(`snapshot ${snapshot.version} rejected, keeping ${this.applied ?? 'none'}: ${error}`);
      this.send({ type: 'nack', version: snapshot.version, nonce, error });
    }
  }
}

function checkShape(s: Snapshot): string | undefined {
  if (typeof s !== 'object' || s === null) return 'snapshot is not an object';
  if (typeof s.version !== 'string') return 'snapshot has no version';
  for (const k of ['listeners', 'routes', 'clusters', 'endpoints'] as const) if (!Array.isArray(s[k])) return `snapshot.${k} is not a list`;
  return undefined;
}
