/**
 * The Kubernetes source: lists and watches the Istio, Kubernetes, OVN and Gateway API kinds through
 * `@kubernetes/client-node`'s informers (ListWatch: list, then watch from the list's
 * resourceVersion; 410 Gone -> relist), and turns the cached objects into a validated config as the
 * directory source does (RawDocuments -> decodeResources -> buildModel). Nothing is handed over before
 * the initial list of every kind has completed. Unlike the directory source, an object with errors of
 * its own is left out (and reported) while the rest is served; errors that belong to no one object
 * still reject the config and the last good one stays. A kind whose CRD is not installed (404) is
 * left out, logged once, and picked up when the CRD watch sees it installed; a kind whose CRD goes
 * away keeps its last objects for a grace period, so an upgrade or re-install does not empty it.
 */
import { createHash } from 'node:crypto';
import {
  ApiextensionsV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, ListWatch, Watch,
  type KubernetesListObject, type KubernetesObject,
} from '@kubernetes/client-node';
import type { Diagnostic } from '../../config/diagnostics.js';
import type { RawDocument } from '../../config/load.js';
import { Debouncer } from '../file-watch.js';
import { ConfigGate, type ConfigEvent, type ConfigListener, type ConfigSource, type ConfigVersion, type Rejection } from '../config-source.js';
import { toDocument } from './documents.js';
import { buildIsolated } from './isolate.js';
import { apiVersionOf, CA_SECRET_NAMES, collectionPath, resourceName, WATCHED_KINDS, type WatchedKind } from './kinds.js';

export interface KubernetesSourceOptions {
  readonly kubeConfig: KubeConfig;
  /**
   * Read Secrets only in these namespaces (one watch each), so RBAC can grant them there alone:
   * gateways' credentialName Secrets live in the gateway's namespace. Default: wherever the other kinds are read.
   */
  readonly secretNamespaces?: readonly string[];
  /** Watch only this namespace (cluster-scoped kinds: only this Namespace object, and all EgressIPs). */
  readonly namespace?: string;
  /** Rebuild this long after the last change (default 100 ms)... */
  readonly debounceMs?: number;
  /** ...but at most this long after the first one of a burst (default 1000 ms). */
  readonly maxDebounceMs?: number;
  /** Accept a config with no objects replacing a non-empty one. */
  readonly allowEmpty?: boolean;
  /** Retry delays after a list/watch failure: exponential from initial to max, with jitter (defaults 500 ms, 30 s). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A LIST that has not answered after this long is abandoned and retried (default 30 s). */
  readonly listTimeoutMs?: number;
  /** How often kinds that were not served (404) are looked for again while CRDs cannot be watched (default 60 s). */
  readonly absentRecheckMs?: number;
  /** How long the objects of a kind whose CRD went away are kept, waiting for it to come back (default 300 s). */
  readonly crdGraceMs?: number;
  /** Objects per LIST page (`limit`; the rest follows with `continue`, default 500). */
  readonly pageSize?: number;
  /** Asks the server to end each watch after this long (plus up to 50 % jitter); the informer re-watches (default 300 s). */
  readonly watchTimeoutSeconds?: number;
  /** At most one watch request per kind per this interval, so a server that closes watches at once is not hammered (default 1000 ms). */
  readonly minWatchIntervalMs?: number;
  /** While the initial sync is incomplete, say which kinds it waits for this often (default 10 s). */
  readonly progressLogMs?: number;
  readonly kinds?: readonly WatchedKind[];
  readonly log?: (line: string) => void;
}

export type KindState = 'pending' | 'synced' | 'absent' | 'dormant';

export interface KindStatus {
  readonly resource: string;
  /** Set when the kind is read in one namespace only (Secrets with `secretNamespaces`). */
  readonly namespace?: string;
  readonly apiVersion: string;
  readonly state: KindState;
  readonly objects: number;
  /** Successful LISTs: 1 is the initial one, more are relists (410 Gone, errors). */
  readonly lists: number;
  /** The kind is no longer served, but its last objects are still in the config until this time (ms epoch). */
  readonly retainedUntil?: number;
  readonly resourceVersion: string;
  readonly lastError?: string;
}

interface KindWatch {
  readonly def: WatchedKind;
  /** Watched in this namespace only, whatever `namespace` says (Secrets with `secretNamespaces`). */
  readonly namespace: string | undefined;
  state: KindState;
  versionIndex: number;
  informer: ListWatch<KubernetesObject> | undefined;
  watch: GuardedWatch | undefined;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  lastError: string | undefined;
  lists: number;
  reportedAbsent: boolean;
  /** Last objects of a kind that stopped being served, kept in the config until the grace timer fires. */
  retained: KubernetesObject[] | undefined;
  retainedUntil: number | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

/** Loads in-cluster config or a kubeconfig (`path`, else $KUBECONFIG, else ~/.kube/config, else the pod's service account). */
export function loadKubeConfig(path?: string): { kubeConfig: KubeConfig; describe: string } {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  // loadFromDefault's last resort is an unauthenticated http://localhost:8080 it never found anywhere.
  if (!cluster || (!path && cluster.name === 'cluster' && cluster.server === 'http://localhost:8080')) {
    throw new Error(path ? `${path}: no current cluster in this kubeconfig` : 'no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a pod; pass --kubeconfig PATH');
  }
  const from = path ?? (kc.getCurrentContext() === 'inClusterContext' ? 'in-cluster service account' : process.env['KUBECONFIG'] || '~/.kube/config');
  return { kubeConfig: kc, describe: `${cluster.server} (context ${kc.getCurrentContext()}, from ${from})` };
}

/**
 * The client's Watch with three additions: every watch asks for bookmarks and a server-side timeout,
 * consecutive watch requests are spaced by a minimum interval, and a watch that opens after its
 * informer was stopped is aborted at once (ListWatch.stop() cannot reach a request still in flight).
 */
class GuardedWatch extends Watch {
  stopped = false;
  private lastStart = 0;

  constructor(kc: KubeConfig, private readonly timeoutSeconds: number, private readonly minIntervalMs: number) {
    super(kc);
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    const wait = this.lastStart + this.minIntervalMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.stopped) return new AbortController();
    this.lastStart = Date.now();
    const controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds }, callback, done);
    if (this.stopped) controller.abort();
    return controller;
  }
}

export class KubernetesConfigSource implements ConfigSource {
  private readonly gate: ConfigGate;
  private readonly kinds: KindWatch[];
  private readonly log: (line: string) => void;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly apiextensions: ApiextensionsV1Api;
  private readonly rebuildDebouncer: Debouncer;
  private progressTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  /** Fingerprint of the documents last built (accepted or rejected): an identical set is not rebuilt. */
  private lastFingerprint: string | undefined;
  private readonly docCache = new WeakMap<object, { doc: RawDocument; json: string }>();
  private firstEvent: Promise<ConfigEvent>;
  private resolveFirst: ((e: ConfigEvent) => void) | undefined;

  constructor(private readonly opts: KubernetesSourceOptions) {
    this.gate = new ConfigGate(opts.allowEmpty === true, 'the cluster');
    this.rebuildDebouncer = new Debouncer(opts.debounceMs ?? 100, opts.maxDebounceMs ?? 1000, () => this.rebuild());
    this.log = opts.log ?? (() => undefined);
    const kc = opts.kubeConfig;
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.apiextensions = kc.makeApiClient(ApiextensionsV1Api);
    const perNamespace = (def: WatchedKind): (string | undefined)[] =>
      def.kind === 'Secret' && def.group === '' && opts.secretNamespaces?.length ? [...opts.secretNamespaces] : [undefined];
    this.kinds = (opts.kinds ?? WATCHED_KINDS).flatMap((def) => perNamespace(def).map((namespace) => ({
      def,
      namespace,
      state: def.fallbackFor ? 'dormant' : 'pending',
      versionIndex: 0,
      informer: undefined,
      watch: undefined,
      attempt: 0,
      timer: undefined,
      lastError: undefined,
      lists: 0,
      reportedAbsent: false,
      retained: undefined,
      retainedUntil: undefined,
      graceTimer: undefined,
    })));
    this.firstEvent = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  get config(): ConfigVersion | undefined {
    return this.gate.current;
  }

  get rejection(): Rejection | undefined {
    return this.gate.lastRejection;
  }

  /** True once every kind has been listed (or found not served): from then on configs are built. */
  get synced(): boolean {
    return this.started && this.kinds.every((k) => k.state !== 'pending');
  }

  onChange(fn: ConfigListener): void {
    this.gate.onChange(fn);
  }

  /** Starts listing and watching every kind. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (const k of this.kinds) if (k.state === 'pending') this.startKind(k);
    const every = this.opts.progressLogMs ?? 10_000;
    this.progressTimer = setInterval(() => {
      if (this.synced) {
        clearInterval(this.progressTimer);
        this.progressTimer = undefined;
        return;
      }
      const waiting = this.kinds.filter((k) => k.state === 'pending').map((k) => `${resourceName(k.def)}${k.lastError ? ` (${k.lastError})` : ''}`);
      this.log(`initial sync: still waiting for ${waiting.join(', ')}`);
    }, every);
    this.progressTimer.unref();
  }

  /** Resolves with the first config event (accepted or rejected) after the initial sync. */
  firstConfig(): Promise<ConfigEvent> {
    return this.firstEvent;
  }

  status(): KindStatus[] {
    return this.kinds.map((k) => ({
      resource: resourceName(k.def),
      ...(k.namespace !== undefined ? { namespace: k.namespace } : {}),
      apiVersion: apiVersionOf(k.def, k.def.versions[k.versionIndex] ?? ''),
      state: k.state,
      objects: k.informer && k.state === 'synced' ? k.informer.list().length : k.retained?.length ?? 0,
      lists: k.lists,
      resourceVersion: k.informer?.latestResourceVersion() ?? '',
      ...(k.retainedUntil !== undefined ? { retainedUntil: k.retainedUntil } : {}),
      ...(k.lastError ? { lastError: k.lastError } : {}),
    }));
  }

  close(): void {
    this.closed = true;
    for (const k of this.kinds) {
      this.stopKind(k);
      if (k.graceTimer) clearTimeout(k.graceTimer);
    }
    this.rebuildDebouncer.cancel();
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.recheckTimer = this.progressTimer = undefined;
  }

  // ---- per-kind informers ----

  private startKind(k: KindWatch): void {
    this.stopKind(k);
    const version = k.def.versions[k.versionIndex] ?? 'v1';
    const namespace = k.namespace ?? (k.def.namespaced ? this.opts.namespace : undefined);
    const fieldSelector = k.def.kind === 'Namespace' && k.def.group === '' && this.opts.namespace !== undefined ? `metadata.name=${this.opts.namespace}` : undefined;
    const timeout = Math.round((this.opts.watchTimeoutSeconds ?? 300) * (1 + Math.random() * 0.5));
    const watch = new GuardedWatch(this.opts.kubeConfig, timeout, this.opts.minWatchIntervalMs ?? 1000);
    const informer: ListWatch<KubernetesObject> = new ListWatch(
      collectionPath(k.def, version, namespace),
      watch,
      () => this.list(k, informer, version, namespace, fieldSelector),
      false,
      undefined,
      fieldSelector,
    );
    const changed = (): void => {
      if (informer !== k.informer) return;
      k.attempt = 0;
      this.schedule();
    };
    if (k.def.bookkeeping) {
      informer.on('add', (crd) => this.crdServed(crd));
      informer.on('update', (crd) => this.crdServed(crd));
    } else {
      informer.on('add', changed);
      informer.on('update', changed);
      informer.on('delete', changed);
    }
    informer.on('error', (err: unknown) => this.onError(k, informer, err));
    k.informer = informer;
    k.watch = watch;
    informer.start().catch((err: unknown) => this.onError(k, informer, err));
  }

  private stopKind(k: KindWatch): void {
    if (k.timer) clearTimeout(k.timer);
    k.timer = undefined;
    const informer = k.informer;
    if (k.watch) k.watch.stopped = true;
    k.informer = undefined;
    k.watch = undefined;
    // Stopping aborts the open watch, which the informer reports as an error; onError ignores stale informers.
    if (informer) void informer.stop();
  }

  /** The informer's list function: one LIST through the generated client, as plain wire-form JSON. */
  private async list(k: KindWatch, informer: ListWatch<KubernetesObject>, version: string, namespace: string | undefined, fieldSelector: string | undefined): Promise<KubernetesListObject<KubernetesObject>> {
    const list = await withTimeout(this.request(k.def, version, namespace, fieldSelector), this.opts.listTimeoutMs ?? 30_000, `LIST ${collectionPath(k.def, version, namespace)}`);
    // Stopped while the LIST was in flight: fail it, so the informer does not go on to open a watch.
    if (informer !== k.informer || this.closed) throw new Error('informer stopped');
    this.listed(k);
    return list;
  }

  /**
   * LISTs page by page (`limit`, then `continue` until the server has no more), so a large cluster
   * is never one huge response. Every page is read at the first page's resourceVersion, which the
   * watch then starts from; an expired continue token (410) fails the LIST and the informer retries.
   */
  private async request(def: WatchedKind, version: string, namespace: string | undefined, fieldSelector: string | undefined): Promise<KubernetesListObject<KubernetesObject>> {
    const limit = this.opts.pageSize ?? 500;
    let first: KubernetesListObject<KubernetesObject> | undefined;
    const items: KubernetesObject[] = [];
    let token: string | undefined;
    for (let page = 0; ; page++) {
      const params: ListParams = { limit, ...(fieldSelector === undefined ? {} : { fieldSelector }), ...(token === undefined ? {} : { _continue: token }) };
      const list = await this.listPage(def, version, namespace, params);
      first ??= list;
      items.push(...list.items);
      // Custom objects come as raw JSON (`continue`), built-in kinds through the typed model (`_continue`).
      const meta = (list.metadata ?? {}) as { continue?: string; _continue?: string };
      token = meta.continue || meta._continue || undefined;
      if (token === undefined) break;
      if (page >= MAX_LIST_PAGES) throw new Error(`LIST ${collectionPath(def, version, namespace)}: more than ${MAX_LIST_PAGES} pages of ${limit}; giving up`);
    }
    const { continue: _c, _continue: _tc, remainingItemCount: _r, ...metadata } = (first.metadata ?? {}) as Record<string, unknown>;
    return { ...first, metadata, items };
  }

  private async listPage(def: WatchedKind, version: string, namespace: string | undefined, params: ListParams): Promise<KubernetesListObject<KubernetesObject>> {
    if (def.api === 'custom') {
      const { group, plural } = def;
      return (namespace === undefined
        ? await this.custom.listClusterCustomObject({ group, version, plural, ...params })
        : await this.custom.listNamespacedCustomObject({ group, version, namespace, plural, ...params })) as KubernetesListObject<KubernetesObject>;
    }
    // Built-in kinds come back as typed models (Date objects, no kind/apiVersion on items): a JSON
    // round trip restores the wire form, so LIST and WATCH objects look alike in the cache.
    return wireForm(await this.typedList(def, namespace, params));
  }

  private typedList(def: WatchedKind, namespace: string | undefined, fs: ListParams): Promise<unknown> {
    const ns = namespace;
    switch (`${def.api}/${def.plural}`) {
      case 'core/services': return ns === undefined ? this.core.listServiceForAllNamespaces(fs) : this.core.listNamespacedService({ namespace: ns, ...fs });
      case 'core/pods': return ns === undefined ? this.core.listPodForAllNamespaces(fs) : this.core.listNamespacedPod({ namespace: ns, ...fs });
      case 'core/secrets': return ns === undefined ? this.core.listSecretForAllNamespaces(fs) : this.core.listNamespacedSecret({ namespace: ns, ...fs });
      case 'core/endpoints': return ns === undefined ? this.core.listEndpointsForAllNamespaces(fs) : this.core.listNamespacedEndpoints({ namespace: ns, ...fs });
      case 'core/namespaces': return this.core.listNamespace(fs);
      case 'apps/deployments': return ns === undefined ? this.apps.listDeploymentForAllNamespaces(fs) : this.apps.listNamespacedDeployment({ namespace: ns, ...fs });
      case 'apiextensions/customresourcedefinitions': return this.apiextensions.listCustomResourceDefinition(fs);
      case 'discovery/endpointslices': return ns === undefined ? this.discovery.listEndpointSliceForAllNamespaces(fs) : this.discovery.listNamespacedEndpointSlice({ namespace: ns, ...fs });
      default: return Promise.reject(new Error(`no typed client for ${def.api}/${def.plural}; list it with api: 'custom'`));
    }
  }

  private listed(k: KindWatch): void {
    k.lists++;
    k.attempt = 0;
    k.lastError = undefined;
    if (k.state === 'synced') return; // a relist: its changes arrive as add/update/delete
    const wasAbsent = k.state === 'absent';
    k.state = 'synced';
    const version = k.def.versions[k.versionIndex];
    if (wasAbsent) this.log(`${resourceName(k.def)} is now served (${apiVersionOf(k.def, version ?? '')}); watching it${k.retained ? `; its objects are read afresh (${k.retained.length} were kept meanwhile)` : ''}`);
    else if (k.versionIndex > 0) this.log(`${resourceName(k.def)}: ${apiVersionOf(k.def, k.def.versions[0] ?? '')} is not served; using ${apiVersionOf(k.def, version ?? '')}`);
    k.reportedAbsent = false;
    this.release(k);
    this.setFallbacks(k.def.kind, false);
    // Runs before the informer fills its cache from this LIST; the rebuild is a timer, so it sees the items.
    this.schedule();
  }

  private onError(k: KindWatch, informer: ListWatch<KubernetesObject>, err: unknown): void {
    if (this.closed || informer !== k.informer) return;
    const code = statusCode(err);
    if (code === 404) return this.notServed(k, 'not found (404): the CRD is not installed');
    if (code === 403 && this.opts.namespace !== undefined && !k.def.namespaced) return this.notServed(k, 'forbidden (403) to a namespace-scoped control plane');
    if (code === 403 && k.def.bookkeeping) return this.notServed(k, 'forbidden (403): CRD changes are noticed by polling instead');
    k.lastError = describeError(err);
    if (k.state === 'absent') {
      // A re-probe of a missing kind failed some other way: look again at the next recheck.
      this.stopKind(k);
      this.scheduleRecheck();
      return;
    }
    k.attempt++;
    const base = Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.initialBackoffMs ?? 500) * 2 ** Math.min(k.attempt - 1, 20));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    if (k.attempt === 1 || k.attempt % 10 === 0) {
      const hint = code === 403 ? ' (RBAC: the control plane needs list and watch on it)' : '';
      this.log(`${resourceName(k.def)}: ${k.lastError}${hint}; retrying in ${delay} ms (attempt ${k.attempt})`);
    }
    k.timer = setTimeout(() => {
      k.timer = undefined;
      if (this.closed || informer !== k.informer) return;
      // The informer resumes from its last resourceVersion; with none (the LIST failed) it lists again.
      informer.start().catch((e: unknown) => this.onError(k, informer, e));
    }, delay);
  }

  /** 404 (or forbidden cluster-scoped kind under --namespace): try an older version, else go on without the kind. */
  private notServed(k: KindWatch, why: string): void {
    const wasSynced = k.state === 'synced';
    if (wasSynced && !k.def.bookkeeping && k.informer) this.retain(k, [...k.informer.list()]);
    this.stopKind(k);
    if (!wasSynced && k.versionIndex + 1 < k.def.versions.length) {
      k.versionIndex++;
      this.startKind(k);
      return;
    }
    k.versionIndex = 0;
    k.state = 'absent';
    k.lastError = why;
    if (!k.reportedAbsent) {
      k.reportedAbsent = true;
      const kept = k.retained ? `its ${k.retained.length} objects stay in the config for up to ${Math.round(this.graceMs / 1000)} s in case it comes back; ` : '';
      this.log(`${resourceName(k.def)} (${k.def.versions.map((v) => apiVersionOf(k.def, v)).join(', ')}): ${why}; ${kept}Tollgate continues without it`);
    }
    this.setFallbacks(k.def.kind, true);
    this.scheduleRecheck();
    this.schedule();
  }

  /** Kinds watched only while `kind` is not served (Endpoints for EndpointSlice). */
  private setFallbacks(kind: string, active: boolean): void {
    for (const f of this.kinds) {
      if (f.def.fallbackFor !== kind) continue;
      if (active && f.state === 'dormant') {
        f.state = 'pending';
        this.startKind(f);
      } else if (!active && f.state !== 'dormant') {
        this.stopKind(f);
        f.state = 'dormant';
        f.versionIndex = 0;
        this.schedule();
      }
    }
  }

  private get graceMs(): number {
    return this.opts.crdGraceMs ?? 300_000;
  }

  /** Keeps a kind's last objects in the config after it stopped being served, until the grace period ends. */
  private retain(k: KindWatch, objects: KubernetesObject[]): void {
    if (k.retained || objects.length === 0) return;
    k.retained = objects;
    k.retainedUntil = Date.now() + this.graceMs;
    k.graceTimer = setTimeout(() => {
      k.graceTimer = undefined;
      if (this.closed || !k.retained) return;
      this.log(`${resourceName(k.def)}: still not served after ${Math.round(this.graceMs / 1000)} s; its ${k.retained.length} objects are dropped`);
      this.release(k);
      this.schedule();
    }, this.graceMs);
  }

  private release(k: KindWatch): void {
    if (k.graceTimer) clearTimeout(k.graceTimer);
    k.graceTimer = undefined;
    k.retained = undefined;
    k.retainedUntil = undefined;
  }

  /** A CRD was created or changed: a kind it defines that is not served is probed at once. */
  private crdServed(crd: KubernetesObject): void {
    const name = crd.metadata?.name;
    for (const k of this.kinds) {
      if (k.state === 'absent' && !k.informer && resourceName(k.def) === name) {
        k.versionIndex = 0;
        this.startKind(k);
      }
    }
  }

  /**
   * Custom kinds that are not served come back through the CRD watch (crdServed); built-in kinds
   * (EndpointSlice on an old server) and every kind while CRDs cannot be watched are polled.
   */
  private polled(k: KindWatch): boolean {
    const crdWatched = this.kinds.some((c) => c.def.bookkeeping && c.state !== 'absent');
    return k.state === 'absent' && !k.informer && !(crdWatched && k.def.api === 'custom');
  }

  private scheduleRecheck(): void {
    if (this.recheckTimer || this.closed || !this.kinds.some((k) => this.polled(k))) return;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined;
      if (this.closed) return;
      for (const k of this.kinds) if (this.polled(k)) this.startKind(k);
    }, this.opts.absentRecheckMs ?? 60_000);
    this.recheckTimer.unref();
  }

  // ---- building configs ----

  private schedule(): void {
    if (this.closed || !this.synced) return;
    this.rebuildDebouncer.poke();
  }

  /** Builds a config from every cached object now; returns the event, or undefined when nothing changed. */
  rebuild(): ConfigEvent | undefined {
    if (this.closed || !this.synced) return undefined;
    const entries: { k: KindWatch; obj: KubernetesObject; version: string }[] = [];
    for (const k of this.kinds) {
      if (k.def.bookkeeping) continue;
      const version = k.def.versions[k.versionIndex] ?? 'v1';
      const objects = k.state === 'synced' && k.informer ? k.informer.list() : k.retained ?? [];
      const isSecret = k.def.kind === 'Secret' && k.def.group === '';
      for (const obj of objects) if (!isSecret || !CA_SECRET_NAMES.has(obj.metadata?.name ?? '')) entries.push({ k, obj, version });
    }
    // Creation order, as Istio merges same-host VirtualServices; then a stable name order.
    const keyOf = (e: (typeof entries)[number]): string => `${e.obj.metadata?.creationTimestamp ? String(e.obj.metadata.creationTimestamp) : ''}\u0000${resourceName(e.k.def)}\u0000${e.obj.metadata?.namespace ?? ''}\u0000${e.obj.metadata?.name ?? ''}`;
    const keyed = entries.map((e) => ({ e, key: keyOf(e) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const hash = createHash('sha256');
    const docs: RawDocument[] = [];
    for (const { e } of keyed) {
      let cached = this.docCache.get(e.obj);
      if (!cached) {
        const doc = toDocument(e.k.def, e.version, e.obj as unknown as Record<string, unknown>);
        cached = { doc, json: canonicalJson(doc.value) };
        this.docCache.set(e.obj, cached);
      }
      hash.update(cached.json).update('\n');
      docs.push(cached.doc);
    }
    const fingerprint = hash.digest('hex');
    if (fingerprint === this.lastFingerprint) return undefined;
    this.lastFingerprint = fingerprint;

    const built = buildIsolated(docs);
    const diagnostics: Diagnostic[] = built.diagnostics;
    const event = this.gate.offer(built.model, diagnostics, built.leftOut);
    if (this.resolveFirst) {
      this.resolveFirst(event);
      this.resolveFirst = undefined;
    }
    return event;
  }
}

/**
 * Typed model -> the JSON the server sent. Dates go back to the server's RFC 3339 form (whole
 * seconds unless there were fractions), so an object reads the same whether it came from a LIST or
 * a WATCH event (and identical objects fingerprint identically).
 */
function wireForm(typed: unknown): KubernetesListObject<KubernetesObject> {
  const text = JSON.stringify(typed, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    return raw instanceof Date ? raw.toISOString().replace(/\.000Z$/, 'Z') : value;
  });
  return JSON.parse(text) as KubernetesListObject<KubernetesObject>;
}

/** JSON with object keys sorted: typed models (LIST) and raw JSON (WATCH) order keys differently. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

type ListParams = { limit?: number; _continue?: string; fieldSelector?: string };

/** With the default page size, 100 pages are 50 000 objects of one kind. */
const MAX_LIST_PAGES = 100;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** HTTP status of a failed LIST (ApiException.code) or WATCH (Error.statusCode). */
function statusCode(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

function describeError(err: unknown): string {
  const code = statusCode(err);
  if (err !== null && typeof err === 'object') {
    const e = err as { body?: unknown; message?: unknown; code?: unknown };
    if (code !== undefined) {
      let message = '';
      try {
        const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string } | undefined);
        message = body?.message ?? '';
      } catch {
        message = '';
      }
      return `HTTP ${code}${message ? `: ${message}` : typeof e.message === 'string' && !e.message.startsWith('HTTP-Code') ? `: ${e.message}` : ''}`;
    }
    if (typeof e.message === 'string') return typeof e.code === 'string' ? `${e.message} (${e.code})` : e.message;
  }
  return String(err);
}
