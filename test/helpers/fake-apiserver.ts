/**
 * A stand-in for the Kubernetes API server, for tests only (no API server can run on this machine).
 * It speaks the real wire protocol over plain HTTP on 127.0.0.1, so the real `@kubernetes/client-node`
 * list/watch machinery runs unmodified against it:
 *
 * - LIST  `GET /api/v1/[namespaces/NS/]PLURAL` and `GET /apis/GROUP/VERSION/[namespaces/NS/]PLURAL`
 *   -> `{kind: XList, apiVersion, metadata: {resourceVersion}, items}`. As the real server does, items
 *   of built-in kinds carry no kind/apiVersion; items of custom resources do.
 * - WATCH the same paths with `?watch=true&resourceVersion=N` -> 200 and newline-delimited
 *   `{type: ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object}`: every change after N is replayed from
 *   the event history, then live changes follow. `allowWatchBookmarks=true` enables BOOKMARK events
 *   (sent on `bookmark()`); `timeoutSeconds` closes the stream after that long; `resourceVersion` ""/"0"
 *   starts with synthetic ADDED events for the current objects.
 * - One resourceVersion counter for the whole server, increasing on every write.
 * - 410 Gone: `compact()` forgets the history, so a watch from an older resourceVersion is refused
 *   (an ERROR event carrying a `Status` with code 410 then end of stream, or HTTP 410 when
 *   `goneAs: 'http'`); `expireWatches()` sends that ERROR event to every open watch.
 * - Custom resources have their CustomResourceDefinition object (`apiextensions.k8s.io/v1`, listed and
 *   watched like any kind): `install()` creates it (ADDED), `uninstall(plural, group)` deletes it
 *   (DELETED) and the kind then answers 404 Status on list and watch.
 * - Pagination: LIST with `limit=N` returns at most N items and `metadata.continue`; the next pages
 *   (`continue=TOKEN`) come from a copy taken at the first page, at its resourceVersion, as etcd
 *   does. `compact()` expires the tokens (410 Expired).
 * - Enough of the rest for the real `kubectl` (apply, get, delete): discovery documents (`/api`,
 *   `/apis`, `/api/v1`, `/apis/G/V`, `/version`; no aggregated discovery and no OpenAPI, so kubectl
 *   runs with `--validate=false`), GET of one object, POST (create; 409 when it exists), PUT (409 on a
 *   stale metadata.resourceVersion), PATCH
 *   (merge and strategic-merge patches applied as JSON merge patches) and DELETE of one object.
 * - A kubeconfig for it (`writeKubeconfig`): plain http, no user credentials, and
 *   `insecure-skip-tls-verify: true`, without which the client refuses an http:// server.
 * - `fieldSelector=metadata.name=X` / `metadata.namespace=X` (labelSelector is not implemented).
 * - Faults: `dropWatches()` cuts every open watch; `setDown(true)` resets every connection (new
 *   ones too) until `setDown(false)`; `holdLists(plural)` keeps LIST requests of a kind waiting
 *   until `releaseLists(plural)`; `failLists(plural, status)` answers them with an error status.
 *
 * Not implemented: authentication, label selectors, protobuf, OpenAPI documents, server-side apply,
 * strategic-merge directives (`$patch`, list merge keys), dry runs, finalizers and graceful deletion.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeKind {
  readonly kind: string;
  readonly group: string; // '' for the core group
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

export const CRD_KIND: FakeKind = { kind: 'CustomResourceDefinition', group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false };

/** The kinds Tollgate watches, as a cluster with Istio, OVN-Kubernetes, OpenShift SDN and the Gateway API serves them. */
export const STANDARD_KINDS: readonly FakeKind[] = [
  ...([['ServiceEntry', 'serviceentries'], ['Gateway', 'gateways'], ['VirtualService', 'virtualservices'], ['DestinationRule', 'destinationrules'], ['Sidecar', 'sidecars'], ['WorkloadEntry', 'workloadentries']] as const).map(([kind, plural]) => ({ kind, group: 'networking.istio.io', version: 'v1', plural, namespaced: true })),
  { kind: 'PeerAuthentication', group: 'security.istio.io', version: 'v1', plural: 'peerauthentications', namespaced: true },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', version: 'v1', plural: 'authorizationpolicies', namespaced: true },
  { kind: 'Service', group: '', version: 'v1', plural: 'services', namespaced: true },
  { kind: 'Pod', group: '', version: 'v1', plural: 'pods', namespaced: true },
  { kind: 'Namespace', group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  { kind: 'Secret', group: '', version: 'v1', plural: 'secrets', namespaced: true },
  { kind: 'Endpoints', group: '', version: 'v1', plural: 'endpoints', namespaced: true },
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true },
  { kind: 'Deployment', group: 'apps', version: 'v1', plural: 'deployments', namespaced: true },
  { kind: 'EgressIP', group: 'k8s.ovn.org', version: 'v1', plural: 'egressips', namespaced: false },
  { kind: 'HostSubnet', group: 'network.openshift.io', version: 'v1', plural: 'hostsubnets', namespaced: false },
  { kind: 'NetNamespace', group: 'network.openshift.io', version: 'v1', plural: 'netnamespaces', namespaced: false },
  { kind: 'Gateway', group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', namespaced: true },
  { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', namespaced: true },
];

/** Built-in kinds an installation writes (what `tollgate manifest generate` emits), for tests that apply one. */
export const INSTALL_KINDS: readonly FakeKind[] = [
  { kind: 'ServiceAccount', group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  { kind: 'ClusterRole', group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  { kind: 'ClusterRoleBinding', group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  { kind: 'Role', group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  { kind: 'RoleBinding', group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  { kind: 'PodDisruptionBudget', group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', namespaced: true },
  { kind: 'HorizontalPodAutoscaler', group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers', namespaced: true },
  { kind: 'NetworkPolicy', group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', namespaced: true },
  { kind: 'ValidatingWebhookConfiguration', group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingwebhookconfigurations', namespaced: false },
];

const BUILT_IN_GROUPS = new Set(['', 'apps', 'discovery.k8s.io', 'networking.k8s.io', 'apiextensions.k8s.io', 'policy', 'rbac.authorization.k8s.io', 'autoscaling', 'admissionregistration.k8s.io']);

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> & { name: string; namespace?: string } };
interface HistoryEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly kindKey: string;
  readonly object: Obj;
}
interface OpenWatch {
  readonly kindKey: string;
  readonly kind: FakeKind;
  readonly namespace: string | undefined;
  readonly nameFilter: string | undefined;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout | undefined;
}
export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly watch: boolean;
  readonly resourceVersion: string | undefined;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

const keyOf = (group: string, plural: string): string => (group ? `${plural}.${group}` : plural);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export class FakeApiServer {
  private readonly server: Server;
  private readonly kinds = new Map<string, FakeKind>(); // plural.group -> kind (installed)
  private readonly objects = new Map<string, Map<string, Obj>>(); // plural.group -> ns/name -> object
  private history: HistoryEvent[] = [];
  /** Watches from a resourceVersion below this are answered with 410 Gone. */
  private compactedBelow = 0;
  private rv = 1000;
  private uid = 0;
  private readonly watches = new Set<OpenWatch>();
  private readonly sockets = new Set<Socket>();
  private readonly held = new Map<string, (() => void)[]>();
  private readonly failing = new Map<string, number>();
  private down = false;
  /** Continue tokens -> the rest of a paginated LIST, copied when its first page was read. */
  private readonly pages = new Map<string, { rv: string; items: Obj[] }>();
  private pageCounter = 0;
  readonly requests: RequestRecord[] = [];
  /** TokenReview: token -> username (e.g. system:serviceaccount:NS:SA); other tokens are not authenticated. */
  readonly tokens = new Map<string, string>();
  port = 0;

  constructor(private readonly opts: { kinds?: readonly FakeKind[]; goneAs?: 'event' | 'http' } = {}) {
    this.install(CRD_KIND);
    for (const k of opts.kinds ?? STANDARD_KINDS) this.install(k);
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      if (this.down) s.destroy();
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Writes a kubeconfig pointing at this server (no auth) and returns its path. */
  writeKubeconfig(dir: string, namespace?: string): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        // The client refuses plain http unless told the cluster has no TLS to verify.
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: nobody',
        '  user: {}',
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: nobody',
        ...(namespace ? [`    namespace: ${namespace}`] : []),
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return file;
  }

  async stop(): Promise<void> {
    for (const w of this.watches) this.endWatch(w);
    for (const s of this.sockets) s.destroy();
    for (const waiters of this.held.values()) for (const w of waiters) w();
    this.held.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  install(k: FakeKind): void {
    this.kinds.set(keyOf(k.group, k.plural), k);
    if (BUILT_IN_GROUPS.has(k.group)) return;
    this.put(CRD_KIND, {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: keyOf(k.group, k.plural) },
      spec: {
        group: k.group, scope: k.namespaced ? 'Namespaced' : 'Cluster',
        names: { kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.kind.toLowerCase() },
        versions: [{ name: k.version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    });
  }

  /** The kind's CRD is deleted: DELETED for the CRD, its list and watch answer 404 and its open watches end. */
  uninstall(plural: string, group: string): void {
    const key = keyOf(group, plural);
    this.kinds.delete(key);
    this.objects.delete(key);
    for (const w of this.watches) if (w.kindKey === key) this.endWatch(w);
    this.remove(CRD_KIND, undefined, key);
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Creates or replaces an object (`apiVersion` + `kind` pick the resource) and emits ADDED/MODIFIED. */
  apply(input: Record<string, unknown>): Obj {
    return this.put(this.kindFor(input), input);
  }

  private put(kind: FakeKind, input: Record<string, unknown>): Obj {
    const key = keyOf(kind.group, kind.plural);
    const meta = (input['metadata'] ?? {}) as Record<string, unknown>;
    const name = String(meta['name']);
    const namespace = kind.namespaced ? String(meta['namespace'] ?? 'default') : undefined;
    const store = this.objects.get(key) ?? new Map<string, Obj>();
    this.objects.set(key, store);
    const id = `${namespace ?? ''}/${name}`;
    const prev = store.get(id);
    const rv = ++this.rv;
    const obj = clone(input) as Obj;
    obj.metadata = {
      ...obj.metadata,
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      resourceVersion: String(rv),
      uid: prev ? prev.metadata['uid'] : `00000000-0000-4000-8000-${String(++this.uid).padStart(12, '0')}`,
      creationTimestamp: prev ? prev.metadata['creationTimestamp'] : new Date(1_700_000_000_000 + this.uid * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      generation: prev ? Number(prev.metadata['generation']) + 1 : 1,
      // What every real object carries and Tollgate must not trip on.
      managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: obj['apiVersion'], time: '2024-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    };
    store.set(id, obj);
    this.record({ rv, type: prev ? 'MODIFIED' : 'ADDED', kindKey: key, object: obj });
    return obj;
  }

  delete(apiVersion: string, kindName: string, namespace: string | undefined, name: string): boolean {
    return this.remove(this.kindFor({ apiVersion, kind: kindName }), namespace, name) !== undefined;
  }

  private get(kind: FakeKind, namespace: string | undefined, name: string): Obj | undefined {
    return this.objects.get(keyOf(kind.group, kind.plural))?.get(`${kind.namespaced ? namespace ?? 'default' : ''}/${name}`);
  }

  private remove(kind: FakeKind, namespace: string | undefined, name: string): Obj | undefined {
    const key = keyOf(kind.group, kind.plural);
    const prev = this.get(kind, namespace, name);
    if (!prev) return undefined;
    this.objects.get(key)?.delete(`${kind.namespaced ? namespace ?? 'default' : ''}/${name}`);
    const rv = ++this.rv;
    const obj = clone(prev);
    obj.metadata['resourceVersion'] = String(rv);
    this.record({ rv, type: 'DELETED', kindKey: key, object: obj });
    return obj;
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that allowed bookmarks. */
  bookmark(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      this.send(w.res, { type: 'BOOKMARK', object: { kind: w.kind.kind, apiVersion: apiVersionOf(w.kind), metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** Forgets the event history: a watch from any resourceVersion before now gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.pages.clear();
    this.compactedBelow = this.rv;
  }

  /** Every open watch gets `ERROR` with a 410 Status (as after etcd compaction), then its stream ends. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watches]) {
      this.send(w.res, { type: 'ERROR', object: goneStatus(this.rv) });
      this.endWatch(w);
    }
  }

  /** Cuts every open watch connection (as a restarting API server or a load balancer would). */
  dropWatches(): void {
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      if (w.timer) clearTimeout(w.timer);
      w.res.socket?.destroy();
    }
  }

  /** While down, every connection (open or new) is reset. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) {
      this.dropWatches();
      for (const s of this.sockets) s.destroy();
    }
  }

  holdLists(plural: string): void {
    if (!this.held.has(plural)) this.held.set(plural, []);
  }

  releaseLists(plural: string): void {
    const waiters = this.held.get(plural) ?? [];
    this.held.delete(plural);
    for (const w of waiters) w();
  }

  failLists(plural: string, status: number | undefined): void {
    if (status === undefined) this.failing.delete(plural);
    else this.failing.set(plural, status);
  }

  openWatches(plural?: string): number {
    return [...this.watches].filter((w) => plural === undefined || w.kind.plural === plural).length;
  }

  lists(plural: string): RequestRecord[] {
    return this.requests.filter((r) => !r.watch && r.status === 200 && r.path.endsWith(`/${plural}`));
  }

  private kindFor(input: Record<string, unknown>): FakeKind {
    const apiVersion = String(input['apiVersion']);
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
    for (const k of this.kinds.values()) if (k.kind === input['kind'] && k.group === group && k.version === version) return k;
    throw new Error(`fake apiserver: ${apiVersion} ${String(input['kind'])} is not installed`);
  }

  private record(e: HistoryEvent): void {
    this.history.push(e);
    for (const w of this.watches) if (this.matches(w, e)) this.send(w.res, { type: e.type, object: e.object });
  }

  private matches(w: OpenWatch, e: HistoryEvent): boolean {
    if (w.kindKey !== e.kindKey) return false;
    if (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace) return false;
    return w.nameFilter === undefined || e.object.metadata.name === w.nameFilter;
  }

  private send(res: ServerResponse, event: unknown): void {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
  }

  private endWatch(w: OpenWatch): void {
    this.watches.delete(w);
    if (w.timer) clearTimeout(w.timer);
    if (!w.res.writableEnded) w.res.end();
  }

  /** POST tokenreviews: answers as the API server does (201, the review with its status filled in). */
  private tokenReview(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let review: { spec?: { token?: string } } = {};
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof review;
      } catch {
        return status(res, 400, 'BadRequest', 'TokenReview body is not JSON');
      }
      const username = this.tokens.get(review.spec?.token ?? '');
      const body = JSON.stringify({
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: review.spec ?? {},
        status: username !== undefined ? { authenticated: true, user: { username, uid: `uid-${username}`, groups: ['system:serviceaccounts', 'system:authenticated'] }, audiences: ['https://kubernetes.default.svc'] } : { user: {}, error: 'invalid bearer token' },
      });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = Object.fromEntries(url.searchParams.entries());
    const isWatch = q['watch'] === 'true' || q['watch'] === '1';
    const method = req.method ?? 'GET';
    const done = (status: number): void => {
      this.requests.push({ method, path: url.pathname, watch: isWatch, resourceVersion: q['resourceVersion'], query: q, status });
    };
    if (method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      done(201);
      return this.tokenReview(req, res);
    }
    if (method === 'GET') {
      const doc = this.discovery(url.pathname);
      if (doc) {
        done(200);
        return json(res, 200, doc);
      }
    }
    const route = parsePath(url.pathname);
    const kind = route ? this.kinds.get(keyOf(route.group, route.plural)) : undefined;
    if (!route || !kind || route.version !== kind.version || (route.namespace !== undefined && !kind.namespaced)) {
      done(404);
      return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    }
    if (route.name !== undefined || method !== 'GET') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const code = this.write(kind, route.namespace, route.name, method, req.headers['content-type'] ?? '', Buffer.concat(chunks).toString('utf8'), res);
        done(code);
      });
      return;
    }
    const selector = parseFieldSelector(q['fieldSelector']);
    const namespace = route.namespace ?? selector.namespace;
    if (isWatch) {
      done(this.startWatch(kind, namespace, selector.name, q, res));
      return;
    }
    const failWith = this.failing.get(kind.plural);
    if (failWith !== undefined) {
      done(failWith);
      return status(res, failWith, failWith === 403 ? 'Forbidden' : 'InternalError', `injected failure listing ${kind.plural}`);
    }
    const answer = (): void => {
      if (res.destroyed) return;
      let page: { rv: string; items: Obj[] };
      const token = q['continue'];
      if (token) {
        const rest = this.pages.get(token);
        if (!rest) {
          done(410);
          return status(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
        }
        this.pages.delete(token);
        page = rest;
      } else {
        const key = keyOf(kind.group, kind.plural);
        const items = [...(this.objects.get(key)?.values() ?? [])]
          .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && (selector.name === undefined || o.metadata.name === selector.name))
          .map((o) => {
            const item = clone(o);
            if (BUILT_IN_GROUPS.has(kind.group)) {
              delete item['kind'];
              delete item['apiVersion'];
            }
            return item;
          });
        page = { rv: String(this.rv), items };
      }
      const limit = Number(q['limit']);
      let next: string | undefined;
      if (Number.isInteger(limit) && limit > 0 && page.items.length > limit) {
        next = `page-${++this.pageCounter}`;
        this.pages.set(next, { rv: page.rv, items: page.items.slice(limit) });
      }
      done(200);
      const items = next === undefined ? page.items : page.items.slice(0, limit);
      json(res, 200, { kind: `${kind.kind}List`, apiVersion: apiVersionOf(kind), metadata: { resourceVersion: page.rv, ...(next ? { continue: next, remainingItemCount: page.items.length - items.length } : {}) }, items });
    };
    const waiters = this.held.get(kind.plural);
    if (waiters) waiters.push(answer);
    else answer();
  }

  /** GET, POST, PUT, PATCH, DELETE of one object, as kubectl sends them. Returns the status written. */
  private write(kind: FakeKind, namespace: string | undefined, name: string | undefined, method: string, contentType: string, body: string, res: ServerResponse): number {
    const details = { name, group: kind.group, kind: kind.plural };
    const notFound = (): number => {
      json(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `${keyOf(kind.group, kind.plural)} "${name ?? ''}" not found`, reason: 'NotFound', details, code: 404 });
      return 404;
    };
    const full = (o: Obj): Obj => ({ ...clone(o), apiVersion: apiVersionOf(kind), kind: kind.kind });
    let input: Record<string, unknown> | undefined;
    if (method !== 'GET' && method !== 'DELETE') {
      try {
        input = JSON.parse(body) as Record<string, unknown>;
      } catch {
        status(res, 400, 'BadRequest', `the body is not JSON (${contentType})`);
        return 400;
      }
    }
    const withPlace = (o: Record<string, unknown>, n: string | undefined): Record<string, unknown> => ({
      ...o,
      apiVersion: apiVersionOf(kind),
      kind: kind.kind,
      metadata: { ...(o['metadata'] as Record<string, unknown> | undefined), ...(n !== undefined ? { name: n } : {}), ...(kind.namespaced ? { namespace: namespace ?? 'default' } : {}) },
    });
    if (method === 'POST' && name === undefined && input) {
      const n = String((input['metadata'] as Record<string, unknown> | undefined)?.['name'] ?? '');
      if (this.get(kind, namespace, n)) {
        json(res, 409, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `${keyOf(kind.group, kind.plural)} "${n}" already exists`, reason: 'AlreadyExists', details: { ...details, name: n }, code: 409 });
        return 409;
      }
      json(res, 201, full(this.put(kind, withPlace(input, undefined))));
      return 201;
    }
    if (name === undefined) {
      status(res, 405, 'MethodNotAllowed', `${method} is not supported on a collection here`);
      return 405;
    }
    const current = this.get(kind, namespace, name);
    switch (method) {
      case 'GET':
        if (!current) return notFound();
        json(res, 200, full(current));
        return 200;
      case 'PUT': {
        // Optimistic concurrency, as the API server does it: a stale resourceVersion is a 409 Conflict.
        const sentRv = (input?.['metadata'] as Record<string, unknown> | undefined)?.['resourceVersion'];
        if (current && typeof sentRv === 'string' && sentRv !== '' && sentRv !== current.metadata['resourceVersion']) {
          json(res, 409, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `Operation cannot be fulfilled on ${keyOf(kind.group, kind.plural)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, reason: 'Conflict', details, code: 409 });
          return 409;
        }
        json(res, current ? 200 : 201, full(this.put(kind, withPlace(input ?? {}, name))));
        return current ? 200 : 201;
      }
      case 'PATCH': {
        if (!current) return notFound();
        const merged = mergePatch(full(current), input) as Record<string, unknown>;
        json(res, 200, full(this.put(kind, withPlace(merged, name))));
        return 200;
      }
      case 'DELETE': {
        const gone = this.remove(kind, namespace, name);
        if (!gone) return notFound();
        json(res, 200, full(gone));
        return 200;
      }
      default:
        status(res, 405, 'MethodNotAllowed', `${method} is not supported`);
        return 405;
    }
  }

  /** The legacy discovery documents kubectl reads to map kinds to resources. */
  private discovery(path: string): unknown {
    const kinds = [...this.kinds.values()];
    const groups = new Map<string, FakeKind[]>();
    for (const k of kinds) groups.set(k.group ? `${k.group}/${k.version}` : k.version, [...(groups.get(k.group ? `${k.group}/${k.version}` : k.version) ?? []), k]);
    const resources = (gv: string): unknown => ({
      kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv,
      resources: (groups.get(gv) ?? []).map((k) => ({ name: k.plural, singularName: k.kind.toLowerCase(), namespaced: k.namespaced, kind: k.kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] })),
    });
    if (path === '/version') return { major: '1', minor: '30', gitVersion: 'v1.30.0-fake', platform: 'linux/amd64' };
    if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }] };
    if (path === '/api/v1') return resources('v1');
    if (path === '/apis') {
      const byGroup = new Map<string, string[]>();
      for (const gv of groups.keys()) {
        if (!gv.includes('/')) continue;
        const [g, v] = gv.split('/') as [string, string];
        byGroup.set(g, [...(byGroup.get(g) ?? []), v]);
      }
      return {
        kind: 'APIGroupList', apiVersion: 'v1',
        groups: [...byGroup].map(([name, versions]) => ({ name, versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })), preferredVersion: { groupVersion: `${name}/${versions[0] ?? ''}`, version: versions[0] ?? '' } })),
      };
    }
    const m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (m && groups.has(`${m[1] ?? ''}/${m[2] ?? ''}`)) return resources(`${m[1] ?? ''}/${m[2] ?? ''}`);
    return undefined;
  }

  private startWatch(kind: FakeKind, namespace: string | undefined, nameFilter: string | undefined, q: Record<string, string>, res: ServerResponse): number {
    const from = q['resourceVersion'];
    const fromRv = from === undefined || from === '' || from === '0' ? undefined : Number(from);
    if (fromRv !== undefined && (!Number.isFinite(fromRv) || fromRv < this.compactedBelow)) {
      if (this.opts.goneAs === 'http') {
        status(res, 410, 'Expired', `too old resource version: ${from} (${this.compactedBelow})`);
        return 410;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      this.send(res, { type: 'ERROR', object: goneStatus(this.compactedBelow, from) });
      res.end();
      return 200;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const timeout = Number(q['timeoutSeconds']);
    const w: OpenWatch = {
      kindKey: keyOf(kind.group, kind.plural),
      kind,
      namespace,
      nameFilter,
      bookmarks: q['allowWatchBookmarks'] === 'true',
      res,
      timer: Number.isFinite(timeout) && timeout > 0 ? setTimeout(() => this.endWatch(w), timeout * 1000) : undefined,
    };
    if (fromRv === undefined) {
      for (const o of this.objects.get(w.kindKey)?.values() ?? []) {
        const e: HistoryEvent = { rv: this.rv, type: 'ADDED', kindKey: w.kindKey, object: o };
        if (this.matches(w, e)) this.send(res, { type: 'ADDED', object: o });
      }
    } else {
      for (const e of this.history) if (e.rv > fromRv && this.matches(w, e)) this.send(res, { type: e.type, object: e.object });
    }
    this.watches.add(w);
    res.on('close', () => {
      this.watches.delete(w);
      if (w.timer) clearTimeout(w.timer);
    });
    return 200;
  }
}

function apiVersionOf(k: FakeKind): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}

function goneStatus(current: number, from?: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from ?? 'watch'} (${current})`, reason: 'Expired', code: 410 };
}

function parsePath(path: string): { group: string; version: string; namespace: string | undefined; plural: string; name: string | undefined } | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1] ?? '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] ?? '';
    version = parts[2] ?? '';
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  const [a, b, c, d] = rest;
  if (rest.length === 1) return { group, version, namespace: undefined, plural: a ?? '', name: undefined };
  if (rest.length === 3 && a === 'namespaces') return { group, version, namespace: b, plural: c ?? '', name: undefined };
  if (rest.length === 4 && a === 'namespaces') return { group, version, namespace: b, plural: c ?? '', name: d };
  // `/api/v1/namespaces/NAME` is a Namespace; any other `/PLURAL/NAME` a cluster-scoped object.
  if (rest.length === 2) return { group, version, namespace: undefined, plural: a ?? '', name: b };
  return undefined;
}

/** RFC 7386 JSON merge patch (kubectl's strategic-merge patches are applied this way too). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function parseFieldSelector(s: string | undefined): { name?: string; namespace?: string } {
  const out: { name?: string; namespace?: string } = {};
  for (const term of (s ?? '').split(',').filter(Boolean)) {
    const [k, v] = term.split('=');
    if (k === 'metadata.name' && v !== undefined) out.name = v;
    else if (k === 'metadata.namespace' && v !== undefined) out.namespace = v;
  }
  return out;
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
