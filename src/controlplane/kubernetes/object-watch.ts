/**
 * A watch on objects of one name (`fieldSelector=metadata.name=NAME`, so RBAC can be limited to
 * that name), for state the control plane keeps itself rather than config: the CA's Secrets, the
 * root-certificate ConfigMaps. It says that something changed, not what: the caller reads what it
 * needs. It reopens when the server ends the watch or it fails (exponential backoff with jitter),
 * and reports a change after every (re)open, since events may have been missed meanwhile.
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';

export interface NamedWatchOptions {
  /** The collection, e.g. /api/v1/namespaces/NS/secrets or /api/v1/configmaps. */
  readonly path: string;
  readonly name: string;
  /** A change (or a reopen): `namespace` is the object's namespace when the event carries one. */
  readonly onChange: (namespace: string | undefined, deleted: boolean) => void;
  readonly log: (line: string) => void;
  /** The server ends each watch after this long (default 300 s). */
  readonly timeoutSeconds?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class NamedObjectWatch {
  private readonly watch: Watch;
  private controller: AbortController | undefined;
  /** Which open() is current: a late `done` of an older watch is ignored. */
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;

  constructor(kc: KubeConfig, private readonly opts: NamedWatchOptions) {
    this.watch = new Watch(kc);
  }

  start(): void {
    void this.open();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.controller?.abort();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    const query = { fieldSelector: `metadata.name=${this.opts.name}`, timeoutSeconds: this.opts.timeoutSeconds ?? 300 };
    const generation = ++this.generation;
    try {
      const controller = await this.watch.watch(
        this.opts.path,
        query,
        (phase: string, obj: { metadata?: { namespace?: string } } | undefined) => {
          this.attempt = 0;
          if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') this.opts.onChange(obj?.metadata?.namespace, phase === 'DELETED');
        },
        (err: unknown) => this.ended(generation, err),
      );
      if (this.closed) return controller.abort();
      if (generation !== this.generation) return; // it already ended; the next one is scheduled
      this.controller = controller;
      this.opts.onChange(undefined, false);
    } catch (err) {
      this.ended(generation, err);
    }
  }

  private ended(generation: number, err: unknown): void {
    if (this.closed || generation !== this.generation) return;
    // Each open ends once: the next one starts a new generation.
    this.generation++;
    this.controller = undefined;
    // A watch the server ended on time reopens at once (after a second, so a server that ends
    // watches immediately is not hammered); a failed one backs off.
    const failed = err !== undefined && err !== null && !(err instanceof Error && err.name === 'AbortError');
    if (failed) this.attempt++;
    const base = failed ? Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.initialBackoffMs ?? 500) * 2 ** Math.min(this.attempt - 1, 16)) : 1000;
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    if (failed && (this.attempt === 1 || this.attempt % 10 === 0)) this.opts.log(`watch of ${this.opts.path} ${this.opts.name}: ${err instanceof Error ? err.message : String(err)}; retrying in ${delay} ms`);
    this.timer = setTimeout(() => void this.open(), delay);
    this.timer.unref();
  }
}
