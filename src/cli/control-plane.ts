import { existsSync, readFileSync } from 'node:fs';
import { AdmissionWebhook } from '../controlplane/admission.js';
import { anyOf, BootstrapTokens, TokenReviewAuthenticator, type Authenticator } from '../controlplane/auth.js';
import { FileConfigSource, type ConfigSource } from '../controlplane/config-source.js';
import { ControlPlane } from '../controlplane/server.js';
import { parse, UsageError, type Io } from './common.js';

export const CONTROL_PLANE_HELP = `Usage: tollgate control-plane -f PATH... --tls-cert FILE --tls-key FILE --bootstrap-tokens FILE [--listen HOST:PORT] [--debounce MS] [--allow-empty-config]
       tollgate control-plane --kubernetes --tls-cert FILE --tls-key FILE [--bootstrap-tokens FILE] [--kubeconfig PATH] [--namespace NS] [--listen HOST:PORT] [--debounce MS] [--allow-empty-config]

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
  --tls-key FILE          --control-plane-ca. Required: snapshots carry TLS private keys
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
  const tokens = values['bootstrap-tokens'] === undefined ? undefined : readTokens(values['bootstrap-tokens']);
  if (values.kubernetes) return kubernetesControlPlane({ webhook, kubeconfig: values.kubeconfig, namespace: values.namespace, secretNamespaces: values['secrets-namespace'] ?? [], host, port, debounceMs, maxDebounceMs, allowEmpty: values['allow-empty-config'] === true, tls, tokens }, io);
  if (!tokens) throw new UsageError('--bootstrap-tokens FILE is required: proxies must authenticate (see docs/control-plane.md)');
  if (!values.file?.length) throw new UsageError('control-plane needs -f PATH to watch');
  const source = new FileConfigSource({ paths: values.file, debounceMs, maxDebounceMs, allowEmpty: values['allow-empty-config'] === true });
  const first = source.reload();
  if (first.kind === 'rejected') {
    io.err(first.rejection.summary);
    io.err('the initial config has errors; not starting (fix them, or run tollgate analyze)');
    return 1;
  }
  const cp = new ControlPlane({ source, tls, authenticator: tokens, log: (l) => io.err(`control-plane: ${l}`) });
  const addr = await cp.listen(host, port);
  source.watch();
  io.err(`control-plane: serving ${first.config.model.resources.length} objects on ${addr.address}:${addr.port}; watching ${values.file.join(', ')}`);
  const stopWebhook = startWebhook(webhook, io);
  await untilSignal(source, cp, stopWebhook);
  return 0;
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


function readTls(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } {
  if (cert === undefined || key === undefined) throw new UsageError('--tls-cert FILE and --tls-key FILE are required: the stream carries TLS private keys (see docs/control-plane.md for a loopback certificate made with openssl)');
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

function untilSignal(source: ConfigSource, cp: ControlPlane, stopWebhook: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      source.close();
      void Promise.all([cp.close(), stopWebhook()]).then(() => resolve());
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
  o: { webhook: WebhookFlags | undefined; kubeconfig: string | undefined; namespace: string | undefined; secretNamespaces: readonly string[]; host: string; port: number; debounceMs: number; maxDebounceMs: number; allowEmpty: boolean; tls: { cert: Buffer; key: Buffer }; tokens: Authenticator | undefined },
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
  const cp = new ControlPlane({ source, tls: o.tls, authenticator: o.tokens ? anyOf(o.tokens, reviews) : reviews, log, leases: new KubernetesLeaseStore(loaded.kubeConfig, leaseNamespace) });
  const addr = await cp.listen(o.host, o.port);
  source.start();
  io.err(`control-plane: serving on ${addr.address}:${addr.port}; waiting for the initial list of ${source.status().filter((s) => s.state === 'pending').length} kinds from ${loaded.describe}${o.namespace !== undefined ? ` in namespace ${o.namespace}` : ''}`);
  void source.firstConfig().then((e) => {
    if (e.kind === 'rejected') log('the initial config from the cluster has errors; serving nothing until they are fixed (see above)');
  });
  await untilSignal(source, cp, startWebhook(o.webhook, io));
  return 0;
}
