import { existsSync, readFileSync } from 'node:fs';
import { AdmissionWebhook } from '../controlplane/admission.js';
import { anyOf, BootstrapTokens, TokenReviewAuthenticator, type Authenticator } from '../controlplane/auth.js';
import { FileConfigSource, type ConfigSource } from '../controlplane/config-source.js';
import { ControlPlane } from '../controlplane/server.js';
import { parse, UsageError, type Io } from './common.js';
import { parseDurationMs } from '../config/schema/dsl.js';
import { DEFAULT_TRUST_DOMAIN, DEFAULT_WORKLOAD_CERT_TTL_MS } from '../shared/workload-identity.js';
import type { CaStore } from '../controlplane/ca/material.js';
import type { CertificateAuthority } from '../controlplane/ca/authority.js';
import { defaultServerNames, keepServerCertificate, type ServerTls } from '../controlplane/ca/server-cert.js';

export const CONTROL_PLANE_HELP = `Usage: tollgate control-plane -f PATH... --bootstrap-tokens FILE (--ca-dir DIR | --tls-cert FILE --tls-key FILE) [--listen HOST:PORT] [--debounce MS] [--allow-empty-config]
       tollgate control-plane --kubernetes [--tls-cert FILE --tls-key FILE] [--bootstrap-tokens FILE] [--kubeconfig PATH] [--namespace NS] [--listen HOST:PORT] [--debounce MS] [--allow-empty-config]

Watches the config, validates it, compiles one snapshot per connected proxy and pushes it when it
changes (only to the proxies whose snapshot changed). Proxies connect with
'tollgate run --control-plane HOST:PORT <identity flags>' and ACK or NACK each version. An invalid
config is rejected with file:line and the last good one stays in force.

  -f, --file PATH         file or directory to watch (repeatable)
  --kubernetes            watch the Kubernetes API instead (Istio CRDs, Services, EndpointSlices, Pods,
                          Namespaces, Secrets, Deployments, EgressIPs, OpenShift SDN HostSubnets and
                          NetNamespaces, Gateway API); nothing is served
                          before every kind has been listed once (see docs/control-plane.md)
  --kubeconfig PATH       with --kubernetes: this kubeconfig (default: $KUBECONFIG, ~/.kube/config,
                          else the pod's service account)
  --namespace NS          with --kubernetes: watch only this namespace (default: all)
  --secrets-namespace NS  with --kubernetes: read Secrets only in NS (repeatable; default: wherever the
                          rest is read), so RBAC grants Secrets in the gateways' namespaces alone
  --tls-cert FILE         certificate (PEM) the control plane serves; proxies verify it with
  --tls-key FILE          --control-plane-ca. Without them the CA issues one (for --tls-san names):
                          the stream is always TLS, snapshots carry TLS private keys
  --tls-san NAME          a DNS name or IP the CA-issued server certificate names (repeatable; always
                          also localhost, 127.0.0.1, ::1 and the --listen address)

Certificate authority (workload certificates with spiffe://TRUST-DOMAIN/ns/NS/sa/SA, issued over
POST /v1/certificate to the identity of the proxy's credential; see docs/security.md):
  --ca-dir DIR            keep the CA in DIR: a self-signed root is generated there on first start
                          (ca-key.pem, mode 0600) and reused; Istio's plugged-in layout (ca-cert.pem,
                          ca-key.pem, root-cert.pem, cert-chain.pem) written there is used instead, and
                          a change of those files is a CA rotation. Proxies trust DIR/root-cert.pem.
                          With --kubernetes and no --ca-dir: the cacerts Secret in the control
                          plane's namespace ($POD_NAMESPACE, else --namespace, else default), else
                          istio-ca-secret there (created with a self-signed root when missing). The
                          roots are published as ConfigMap istio-ca-root-cert (key root-cert.pem) in
                          every namespace, for the proxies' --control-plane-ca
  --trust-domain NAME     the SPIFFE trust domain (default cluster.local)
  --workload-cert-ttl DUR lifetime of workload certificates, e.g. 24h, 90m, 30s (default 24h); proxies
                          renew at 80% of it
  --bootstrap-tokens FILE one "TOKEN NAMESPACE SERVICE_ACCOUNT" per line; a proxy presenting TOKEN
                          gets the snapshot of its identity in NAMESPACE only, and only NAMESPACE's
                          Secrets. With --kubernetes, service-account tokens are also accepted
                          (checked by TokenReview)
  --listen HOST:PORT      where proxies and views connect (default 127.0.0.1:15010)
  --debounce MS           wait this long after the last change before reloading (default 200; 100 with --kubernetes)
  --debounce-max MS       ...but reload at most this long after the first change of a burst, so a
                          source that never stops changing still applies (default 1000)
  --allow-empty-config    accept a config with no objects replacing a non-empty one

  --webhook-listen HOST:PORT  serve the validating admission webhook (HTTPS, POST /validate with an
                          AdmissionReview v1): Istio kinds, EgressIPs and egress-router Deployments are
                          checked as 'tollgate analyze' checks them; errors deny with the field path and fix
  --webhook-tls-cert PATH, --webhook-tls-key PATH  its certificate and key (PEM); while the files do not
                          exist yet (a Secret volume not yet filled) the webhook waits for them
  --inject-image IMAGE    also serve sidecar injection on the webhook (POST /inject, mutating): pods get
                          what 'tollgate inject' adds, with this image
  --inject-control-plane HOST:PORT  the control plane injected sidecars connect to (with --inject-image)

Floating source address leases (/v1/leases): arbitrated in memory with -f; with --kubernetes they
are coordination.k8s.io/v1 Lease objects in --namespace (else $POD_NAMESPACE, else default).

Views (same address, same TLS, a valid token required except for /ready and /metrics): /ready,
/v1/proxies, /v1/proxies/<key>/snapshot (secret values redacted), /v1/config, /v1/leases.
See 'tollgate proxy-status' and 'tollgate proxy-config'.`;

export function parseHostPort(s: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`${flag} must be HOST:PORT, got "${s}"`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

export async function controlPlaneCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    file: { type: 'string', short: 'f', multiple: true },
    listen: { type: 'string' },
    debounce: { type: 'string' },
    'debounce-max': { type: 'string' },
    'allow-empty-config': { type: 'boolean' },
    kubernetes: { type: 'boolean' },
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'secrets-namespace': { type: 'string', multiple: true },
    'webhook-listen': { type: 'string' },
    'webhook-tls-cert': { type: 'string' },
    'webhook-tls-key': { type: 'string' },
    'inject-image': { type: 'string' },
    'inject-control-plane': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'bootstrap-tokens': { type: 'string' },
    'tls-san': { type: 'string', multiple: true },
    'ca-dir': { type: 'string' },
    'trust-domain': { type: 'string' },
    'workload-cert-ttl': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(CONTROL_PLANE_HELP);
    return 0;
  }
  if (values.kubernetes && values.file?.length) throw new UsageError('use either -f PATH or --kubernetes, not both');
  if (!values.kubernetes && (values.kubeconfig !== undefined || values.namespace !== undefined || values['secrets-namespace'] !== undefined)) throw new UsageError('--kubeconfig, --namespace and --secrets-namespace go with --kubernetes');
  if (!values.kubernetes && !values.file?.length) throw new UsageError('control-plane needs -f PATH to watch, or --kubernetes');
  const { host, port } = parseHostPort(values.listen ?? '127.0.0.1:15010', '--listen');
  const webhook = webhookOptions(values['webhook-listen'], values['webhook-tls-cert'], values['webhook-tls-key'], values['inject-image'], values['inject-control-plane']);
  const debounceMs = values.debounce === undefined ? (values.kubernetes ? 100 : 200) : Number(values.debounce);
  if (!Number.isInteger(debounceMs) || debounceMs < 0) throw new UsageError('--debounce must be a whole number of milliseconds');
  const maxDebounceMs = values['debounce-max'] === undefined ? Math.max(1000, debounceMs) : Number(values['debounce-max']);
  if (!Number.isInteger(maxDebounceMs) || maxDebounceMs < debounceMs) throw new UsageError('--debounce-max must be a whole number of milliseconds, at least --debounce');
  const tls = readTls(values['tls-cert'], values['tls-key']);
  const caFlags = caOptions(values['ca-dir'], values['trust-domain'], values['workload-cert-ttl'], values['tls-san'] ?? [], host);
  if (!values.kubernetes && !tls && caFlags.dir === undefined) throw new UsageError('give --ca-dir DIR (the CA issues the control plane\'s certificate) or --tls-cert FILE --tls-key FILE: the stream is always TLS, snapshots carry TLS private keys (see docs/control-plane.md)');
  const tokens = values['bootstrap-tokens'] === undefined ? undefined : readTokens(values['bootstrap-tokens']);
  if (values.kubernetes) return kubernetesControlPlane({ webhook, kubeconfig: values.kubeconfig, namespace: values.namespace, secretNamespaces: values['secrets-namespace'] ?? [], host, port, debounceMs, maxDebounceMs, allowEmpty: values['allow-empty-config'] === true, tls, tokens, ca: caFlags }, io);
  if (!tokens) throw new UsageError('--bootstrap-tokens FILE is required: proxies must authenticate (see docs/control-plane.md)');
  if (!values.file?.length) throw new UsageError('control-plane needs -f PATH to watch');
  const source = new FileConfigSource({ paths: values.file, debounceMs, maxDebounceMs, allowEmpty: values['allow-empty-config'] === true });
  const first = source.reload();
  if (first.kind === 'rejected') {
    io.err(first.rejection.summary);
    io.err('the initial config has errors; not starting (fix them, or run tollgate analyze)');
    return 1;
  }
  const log = (l: string): void => io.err(`control-plane: ${l}`);
  let cp: ControlPlane | undefined;
  const ca = caFlags.dir === undefined ? undefined : await startCa(caFlags, tls, (t) => cp?.setTls(t), log, async () => new (await import('../controlplane/ca/file-store.js')).CaDirectory(caFlags.dir!, caFlags.trustDomain, log));
  cp = new ControlPlane({ source, tls: tls ?? ca!.serverTls!, authenticator: tokens, log, ...(ca ? { ca: ca.authority } : {}) });
  const addr = await cp.listen(host, port);
  source.watch();
  io.err(`control-plane: serving ${first.config.model.resources.length} objects on ${addr.address}:${addr.port}; watching ${values.file.join(', ')}`);
  const stopWebhook = startWebhook(webhook, io);
  await untilSignal(source, cp, async () => {
    ca?.close();
    await stopWebhook();
  });
  return 0;
}

interface CaFlags {
  readonly dir: string | undefined;
  readonly trustDomain: string;
  readonly workloadCertTtlMs: number;
  readonly serverNames: readonly string[];
}

function caOptions(dir: string | undefined, trustDomain: string | undefined, ttl: string | undefined, sans: readonly string[], listenHost: string): CaFlags {
  const td = trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(td)) throw new UsageError(`--trust-domain "${td}" is not a valid trust domain (lowercase letters, digits, '-' and '.')`);
  const ttlMs = ttl === undefined ? DEFAULT_WORKLOAD_CERT_TTL_MS : parseDurationMs(ttl);
  if (ttlMs === undefined || ttlMs < 2000 || ttlMs > 366 * 24 * 3_600_000) throw new UsageError(`--workload-cert-ttl must be a duration from 2s to 8784h (e.g. 24h, 90m), got "${ttl}"`);
  return { dir, trustDomain: td, workloadCertTtlMs: ttlMs, serverNames: defaultServerNames(listenHost, sans) };
}

interface RunningCa {
  readonly authority: CertificateAuthority;
  /** The CA-issued server certificate, when no explicit one was given. */
  readonly serverTls: ServerTls | undefined;
  close(): void;
}

/** Loads (or creates) the CA material, starts signing, follows rotations; issues our server certificate unless one was given. */
async function startCa(flags: CaFlags, explicitTls: { cert: Buffer; key: Buffer } | undefined, applyTls: (t: ServerTls) => void, log: (l: string) => void, openStore: () => Promise<CaStore>): Promise<RunningCa> {
  const { CertificateAuthority } = await import('../controlplane/ca/authority.js');
  const store = await openStore();
  const authority = new CertificateAuthority({ trustDomain: flags.trustDomain, workloadCertTtlMs: flags.workloadCertTtlMs, log });
  await authority.use(await store.load());
  store.watch((m) => void authority.use(m).catch((err: unknown) => log(`CA: cannot sign with the new material, keeping the previous one: ${err instanceof Error ? err.message : String(err)}`)));
  const server = explicitTls ? undefined : await keepServerCertificate(authority, flags.serverNames, Math.max(flags.workloadCertTtlMs, 10_000), applyTls, log);
  return {
    authority,
    serverTls: server?.first,
    close() {
      server?.stop();
      store.close();
      authority.close();
    },
  };
}

interface WebhookFlags {
  readonly host: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly inject?: { readonly image: string; readonly controlPlane: string; readonly cni: boolean };
}

function webhookOptions(listen: string | undefined, cert: string | undefined, key: string | undefined, injectImage: string | undefined, injectControlPlane: string | undefined): WebhookFlags | undefined {
  if (listen === undefined) {
    if (cert !== undefined || key !== undefined || injectImage !== undefined) throw new UsageError('--webhook-tls-cert, --webhook-tls-key and --inject-image go with --webhook-listen');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError('--webhook-listen needs --webhook-tls-cert and --webhook-tls-key (the API server calls webhooks over HTTPS only)');
  if ((injectImage === undefined) !== (injectControlPlane === undefined)) throw new UsageError('--inject-image and --inject-control-plane go together');
  if (injectControlPlane !== undefined) parseHostPort(injectControlPlane, '--inject-control-plane');
  return { ...parseHostPort(listen, '--webhook-listen'), cert, key, ...(injectImage !== undefined && injectControlPlane !== undefined ? { inject: { image: injectImage, controlPlane: injectControlPlane, cni: false } } : {}) };
}

/** Starts the webhook once its certificate files exist (checked every 5 s); returns its stop function. */
function startWebhook(flags: WebhookFlags | undefined, io: Io): () => Promise<void> {
  if (!flags) return () => Promise.resolve();
  let webhook: AdmissionWebhook | undefined;
  let timer: NodeJS.Timeout | undefined;
  let waitingLogged = false;
  const attempt = (): void => {
    timer = undefined;
    if (!existsSync(flags.cert) || !existsSync(flags.key)) {
      if (!waitingLogged) io.err(`control-plane: webhook: waiting for ${flags.cert} and ${flags.key}`);
      waitingLogged = true;
      timer = setTimeout(attempt, 5000);
      return;
    }
    const w = new AdmissionWebhook({ cert: readFileSync(flags.cert), key: readFileSync(flags.key), ...(flags.inject ? { inject: flags.inject } : {}), log: (l) => io.err(`control-plane: ${l}`) });
    w.listen(flags.host, flags.port).then(
      (a) => {
        webhook = w;
        io.err(`control-plane: webhook: serving https://${a.address}:${a.port}/validate`);
      },
      (err: unknown) => io.err(`control-plane: webhook: cannot listen on ${flags.host}:${flags.port}: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  attempt();
  return async () => {
    if (timer) clearTimeout(timer);
    await webhook?.close();
  };
}


function readTls(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new UsageError('--tls-cert FILE and --tls-key FILE go together');
  try {
    return { cert: readFileSync(cert), key: readFileSync(key) };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function readTokens(file: string): BootstrapTokens {
  try {
    return BootstrapTokens.fromFile(file);
  } catch (err) {
    throw new UsageError(`--bootstrap-tokens: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function untilSignal(source: ConfigSource, cp: ControlPlane, stopOthers: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      source.close();
      void Promise.all([cp.close(), stopOthers()]).then(() => resolve());
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/**
 * `--kubernetes`: listens at once (/ready answers 503 and proxies get nothing until the initial
 * list of every kind has completed and produced a valid config), then follows the cluster. An
 * invalid initial config does not exit: it is logged and the next valid one is served.
 */
async function kubernetesControlPlane(
  o: { webhook: WebhookFlags | undefined; kubeconfig: string | undefined; namespace: string | undefined; secretNamespaces: readonly string[]; host: string; port: number; debounceMs: number; maxDebounceMs: number; allowEmpty: boolean; tls: { cert: Buffer; key: Buffer } | undefined; tokens: Authenticator | undefined; ca: CaFlags },
  io: Io,
): Promise<number> {
  // Loaded on demand: the client library takes ~0.5 s to import, which other commands need not pay.
  const { KubernetesConfigSource, loadKubeConfig } = await import('../controlplane/kubernetes/source.js');
  const { KubernetesLeaseStore } = await import('../controlplane/kubernetes/leases.js');
  const { kubernetesTokenReviewer } = await import('../controlplane/kubernetes/token-review.js');
  let loaded: ReturnType<typeof loadKubeConfig>;
  try {
    loaded = loadKubeConfig(o.kubeconfig);
  } catch (err) {
    throw new UsageError(`--kubernetes: ${err instanceof Error ? err.message : String(err)}`);
  }
  const log = (l: string): void => io.err(`control-plane: ${l}`);
  const source = new KubernetesConfigSource({ kubeConfig: loaded.kubeConfig, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}), ...(o.secretNamespaces.length ? { secretNamespaces: o.secretNamespaces } : {}), debounceMs: o.debounceMs, maxDebounceMs: o.maxDebounceMs, allowEmpty: o.allowEmpty, log: (l) => log(`kubernetes: ${l}`) });
  // Floating source address leases are Lease objects in the watched namespace, else the control plane's own.
  const leaseNamespace = o.namespace ?? process.env['POD_NAMESPACE'] ?? 'default';
  const reviews = new TokenReviewAuthenticator(kubernetesTokenReviewer(loaded.kubeConfig));
  // The CA's Secrets live beside the control plane itself.
  const caNamespace = process.env['POD_NAMESPACE'] ?? o.namespace ?? 'default';
  let cp: ControlPlane | undefined;
  const openStore = async (): Promise<CaStore> => {
    if (o.ca.dir !== undefined) return new (await import('../controlplane/ca/file-store.js')).CaDirectory(o.ca.dir, o.ca.trustDomain, log);
    return new (await import('../controlplane/kubernetes/ca-secret.js')).KubernetesCaSecrets(loaded.kubeConfig, caNamespace, o.ca.trustDomain, log);
  };
  let ca: RunningCa;
  try {
    ca = await startCa(o.ca, o.tls, (t) => cp?.setTls(t), log, openStore);
  } catch (err) {
    io.err(`control-plane: the CA cannot start: ${err instanceof Error ? err.message : String(err)}${o.ca.dir === undefined ? ` (it needs get and create on Secrets in namespace ${caNamespace}; see docs/security.md)` : ''}`);
    return 1;
  }
  cp = new ControlPlane({ source, tls: o.tls ?? ca.serverTls!, authenticator: o.tokens ? anyOf(o.tokens, reviews) : reviews, log, leases: new KubernetesLeaseStore(loaded.kubeConfig, leaseNamespace), ca: ca.authority });
  // The roots for the pods' --control-plane-ca, in every namespace (the istio-ca-root-cert ConfigMap).
  const { RootCertPublisher } = await import('../controlplane/kubernetes/root-configmap.js');
  const publisher = new RootCertPublisher(loaded.kubeConfig, log);
  const publishRoots = (): void => publisher.setRoots(ca.authority.rootCertsPem());
  publishRoots();
  ca.authority.onChange(publishRoots);
  source.onChange((e) => {
    if (e.kind === 'accepted') publisher.setNamespaces(e.config.model.resources.filter((r) => r.kind === 'Namespace').map((r) => r.name));
  });
  publisher.start();
  const addr = await cp.listen(o.host, o.port);
  source.start();
  io.err(`control-plane: serving on ${addr.address}:${addr.port}; waiting for the initial list of ${source.status().filter((s) => s.state === 'pending').length} kinds from ${loaded.describe}${o.namespace !== undefined ? ` in namespace ${o.namespace}` : ''}`);
  void source.firstConfig().then((e) => {
    if (e.kind === 'rejected') log('the initial config from the cluster has errors; serving nothing until they are fixed (see above)');
  });
  const stopWebhook = startWebhook(o.webhook, io);
  await untilSignal(source, cp, async () => {
    publisher.close();
    ca.close();
    await stopWebhook();
  });
  return 0;
}
