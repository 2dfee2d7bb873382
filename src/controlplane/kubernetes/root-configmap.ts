/**
 * The CA's roots for the pods, as istiod publishes them: a ConfigMap `istio-ca-root-cert` with the
 * key `root-cert.pem` in every namespace (but Kubernetes' own), which proxies mount for their
 * `--control-plane-ca`. It holds the whole trust bundle, so during a root rotation it carries the
 * old and the new root, and a proxy that starts (or reconnects) mid-rotation trusts the control
 * plane whichever root its certificate chains to. Kept up to date when the roots or the namespaces
 * change, and put back when someone edits or deletes it (a watch on the ConfigMaps of that name).
 */
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { ROOT_CERT_CONFIGMAP as ROOT_CONFIGMAP, ROOT_CERT_CONFIGMAP_KEY as ROOT_CONFIGMAP_KEY } from './kinds.js';
import { NamedObjectWatch } from './object-watch.js';

/** Namespaces that run no proxy (istiod leaves them out too). */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease']);

function codeOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

export class RootCertPublisher {
  private readonly api: CoreV1Api;
  private readonly watch: NamedObjectWatch;
  private roots: string | undefined;
  private namespaces = new Set<string>();
  /** namespace -> the roots last written (or found) there. */
  private readonly published = new Map<string, string>();
  private syncing: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  private lastProblem: string | undefined;
  private closed = false;

  constructor(kc: KubeConfig, private readonly log: (line: string) => void) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.watch = new NamedObjectWatch(kc, {
      path: '/api/v1/configmaps',
      name: ROOT_CONFIGMAP,
      // Someone else changed (or removed) one: check it again.
      onChange: (namespace) => {
        if (namespace === undefined) this.published.clear();
        else this.published.delete(namespace);
        this.kick();
      },
      log,
    });
  }

  start(): void {
    this.watch.start();
  }

  close(): void {
    this.closed = true;
    this.watch.close();
    if (this.retry) clearTimeout(this.retry);
  }

  /** The trust bundle to publish (PEM, one or more roots). */
  setRoots(pem: string): void {
    if (pem === this.roots) return;
    this.roots = pem;
    this.kick();
  }

  /** The namespaces that exist now. */
  setNamespaces(names: Iterable<string>): void {
    this.namespaces = new Set([...names].filter((n) => !SYSTEM_NAMESPACES.has(n)));
    for (const ns of this.published.keys()) if (!this.namespaces.has(ns)) this.published.delete(ns);
    this.kick();
  }

  /** Resolves when every namespace known now holds the current roots (tests, shutdown). */
  settled(): Promise<void> {
    return this.syncing;
  }

  private kick(): void {
    // One pass at a time; a pass started after this change sees it.
    this.syncing = this.syncing.then(() => this.sync());
  }

  private async sync(): Promise<void> {
    const roots = this.roots;
    if (this.closed || roots === undefined) return;
    let failed = 0;
    let problem: string | undefined;
    for (const ns of this.namespaces) {
      if (this.published.get(ns) === roots) continue;
      try {
        await this.upsert(ns, roots);
        this.published.set(ns, roots);
      } catch (err) {
        failed++;
        problem = `${ns}: ${err instanceof Error ? err.message : String(err)}${codeOf(err) === 403 ? ' (RBAC: the control plane needs get, create and update on ConfigMaps)' : ''}`;
      }
    }
    if (failed > 0) {
      if (problem !== this.lastProblem) this.log(`cannot publish ConfigMap ${ROOT_CONFIGMAP} in ${failed} namespace(s), retrying: ${problem}`);
      this.lastProblem = problem;
      if (!this.retry && !this.closed) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.kick();
        }, 5000);
        this.retry.unref();
      }
    } else this.lastProblem = undefined;
  }

  private async upsert(namespace: string, roots: string): Promise<void> {
    let current: V1ConfigMap | undefined;
    try {
      current = await this.api.readNamespacedConfigMap({ name: ROOT_CONFIGMAP, namespace });
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
    }
    if (current?.data?.[ROOT_CONFIGMAP_KEY] === roots) return;
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: ROOT_CONFIGMAP, namespace, labels: { 'istio.io/config': 'true', 'app.kubernetes.io/managed-by': 'tollgate' }, ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) },
      data: { ...(current?.data ?? {}), [ROOT_CONFIGMAP_KEY]: roots },
    };
    if (current) await this.api.replaceNamespacedConfigMap({ name: ROOT_CONFIGMAP, namespace, body });
    else await this.api.createNamespacedConfigMap({ namespace, body });
    this.log(`published the CA roots (${roots.match(/BEGIN CERTIFICATE/g)?.length ?? 0} certificate(s)) in ConfigMap ${namespace}/${ROOT_CONFIGMAP}`);
  }
}
