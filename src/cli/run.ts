/**
 * `tollgate run`: flags -> config -> snapshot -> data plane runtime + admin server + signals.
 * Argument parsing only; everything else is in the modules it calls. `startTollgate` is the same
 * thing in-process (tests, embedding); `runCommand` adds stdout/stderr, signals and the exit code.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseCidr, type Cidr } from '../net/ip.js';
import { splitHostPort } from '../net/hostname.js';
import { adminPort, adminText, startAdmin, type AdminOptions, type AdminServer } from '../admin/server.js';
import type { DataPlaneServices, HttpConnectionHandlerFactory } from '../dataplane/context.js';
import { AccessLogger, type AccessLogFormat } from '../dataplane/observe/access-log.js';
import { DEFAULT_LOG_BUFFER_BYTES, FileSink, stdoutSink, type LogSink } from '../dataplane/observe/log-sink.js';
import { DataPlaneMetrics } from '../dataplane/observe/istio-metrics.js';
import { loopLag, type LoopLag } from '../dataplane/observe/loop-lag.js';
import { DEFAULT_MAX_SERIES_PER_METRIC, MetricsRegistry } from '../dataplane/observe/metrics.js';
import { httpEngine } from '../dataplane/http/engine.js';
import { UNDERSCORE_HEADER_ACTIONS, type UnderscoreHeaderAction } from '../dataplane/http/options.js';
import { HostAgents } from '../dataplane/kernel/host-agents.js';
import { Runtime, type InterceptionMode } from '../dataplane/runtime.js';
import { startStatusServers, STATUS_PORTS, type StatusServers } from '../admin/status.js';
import { podIdentity } from './pod-identity.js';
import { ConnectionBudget } from '../dataplane/listener/connection-budget.js';
import { connectionBudget, raiseFdLimit, RESERVED_FDS } from './fd-limit.js';
import { ClusterManager } from '../dataplane/upstream/cluster-manager.js';
import { TollgateError, errorMessage } from '../shared/errors.js';
import { Logger, isLogLevel, type LogLevel } from '../shared/logger.js';
import type { ProxyIdentity, ProxyRole, Snapshot } from '../snapshot/types.js';
import type { ExplicitProxySpec } from './run-config.js';
import { defaultConfigDir, loadSnapshotIsolated, type IdentityFlags, type SnapshotReply, type SnapshotRequest } from './snapshot-loader.js';
import { ControlPlaneClient } from '../controlplane/client.js';
import type { WorkloadCertClient } from '../controlplane/workload-certs.js';
import { WorkloadIdentityHolder, type WorkloadIdentitySource } from '../shared/workload-identity.js';
import { HttpLeaseClient } from '../controlplane/lease-client.js';
import { watchPaths, type PathWatch } from '../controlplane/file-watch.js';
import type { SnapshotOptions } from '../snapshot/build.js';
import { parseLabels } from './args.js';
import { isWorkerProcess, privateAdminSocket, reportAdmin, runPrimary } from './workers.js';
import { watchWorkloadCertDir } from '../dataplane/mesh/cert-files.js';
import { collectAfterApply } from './serving-heap.js';

export interface RunOptions {
  readonly files: readonly string[];
  readonly identity: IdentityFlags;
  /** undefined = admin off. */
  readonly admin?: AdminOptions;
  /** Ports other processes of this proxy listen on (the --workers primary's admin): never dialed, like its own. */
  readonly siblingPorts?: readonly number[];
  readonly dnsServers: readonly string[];
  readonly sourceAddress?: string;
  readonly allowCidrs: readonly Cidr[];
  readonly workers: number;
  readonly explicitProxy?: ExplicitProxySpec;
  /** `--report-only`: pass destinations outside the registry and log them as would_deny_registry. */
  readonly reportOnly?: boolean;
  readonly accessLogFormat: AccessLogFormat;
  /** `--no-access-log`: no access-log lines (metrics and denials counters still count). */
  readonly accessLogOff: boolean;
  /** `--access-log-file`: append to this file (reopened on SIGUSR1) instead of stdout. */
  readonly accessLogFile?: string;
  /** Access-log bytes queued for a slow sink before lines are dropped. */
  readonly accessLogBufferBytes: number;
  readonly listenAddressOverride?: string;
  readonly portMap: ReadonlyMap<number, number>;
  readonly drainTimeoutMs: number;
  readonly tlsHelloTimeoutMs: number;
  readonly requestHeadTimeoutMs: number;
  readonly tcpIdleTimeoutMs?: number;
  readonly dnsTimeoutMs?: number;
  /** DNS answer-cache bounds (see docs/operations.md#dns). */
  readonly dnsCache: { readonly minTtlSec?: number; readonly maxTtlSec?: number; readonly maxStaleSec?: number; readonly negativeTtlSec?: number };
  readonly maxConnectionsPerListener: number;
  /** Downstream connections of all listeners together (set from the open-file limit at start). */
  readonly maxConnectionsTotal?: number;
  readonly logLevel: LogLevel;
  /** True when no -f was given and the bundled examples/default config is used. */
  readonly usingDefaultConfig: boolean;
  /** Watch the -f paths and apply every valid change (debounced); invalid changes are logged and skipped. */
  readonly watch: boolean;
  /** Take snapshots from a control plane instead of files (TLS verified with `caFile`, authenticated with the token in `tokenFile`). */
  readonly controlPlane?: { readonly host: string; readonly port: number; readonly caFile: string; readonly tokenFile: string };
  /** Directory with the workload certificate (key.pem, cert-chain.pem, root-cert.pem), reloaded on change. */
  readonly workloadCertDir?: string;
  /** Egress router kernel mode: the interface for EGRESS_SOURCE, and the parent to create it on. */
  readonly routerInterface: string;
  readonly routerMacvlanParent?: string;
  /** Floating source address leases: duration, renew interval, and how early a holder that cannot renew lets go. */
  readonly sourceLease: { readonly durationMs: number; readonly renewMs: number; readonly marginMs: number };
  /** Sidecar capture mode (the capture rules `tollgate init -m` wrote). */
  readonly interceptionMode: InterceptionMode;
  /** Sidecar status ports 15021/15090/15020 (on by default inside a pod). */
  readonly statusPorts: boolean;
  readonly appMetricsUrl?: string;
  /** `--max-metric-series`: label combinations per metric before new ones are refused (metrics.ts). */
  readonly maxMetricSeries: number;
  /** `--headers-with-underscores`: request header names with `_` (header-hygiene.ts). */
  readonly headersWithUnderscores: UnderscoreHeaderAction;
}

export const RUN_USAGE = `usage: tollgate run [-f PATH]... [options]

  -f, --file PATH              config file or directory (repeatable; '-' = stdin). Default: the bundled
                               examples/default (egress gateway on 127.0.0.1:8080/8443)
  --role gateway|sidecar|router  proxy role (default gateway)
  -n, --namespace NS           proxy namespace
  -l, --labels k=v,...         proxy labels; when omitted and the config has one Gateway selector
                               (or one egress router), that identity is used
  --name NAME                  proxy (pod/deployment) name
  --node NAME                  the node this replica runs on (default: $NODE_NAME); picks its share of
                               a source address pool (OpenShift SDN HostSubnet.host)
  --admin HOST:PORT|off        admin API (default 127.0.0.1:15000)
  --dns-server HOST:PORT       DNS server for DNS clusters and requested hosts (repeatable)
  --dns-min-ttl SEC            cache answers at least this long (default 0: TTL 0 re-queries)
  --dns-max-ttl SEC            cache answers at most this long (default 300)
  --dns-max-stale SEC          when the resolver fails, keep serving the last good answer up to
                               this long after it expired (default 300; 0 = never)
  --dns-negative-ttl SEC       remember "no such host" answers this long (default 5)
  --source-address IP          proxy-wide source address for upstream connections
  --allow-cidr CIDR            let the SSRF guard allow this range (repeatable)
  --workers N|auto             worker processes sharing the listeners (default 1; auto = cores);
                               the primary serves the admin API, merging the workers' metrics
  --explicit-proxy HOST:PORT   serve CONNECT on HOST:PORT against the registry
  --connect-ports P,...        ports CONNECT may reach (default 443)
  --report-only                the explicit proxy passes destinations outside the registry (as
                               ALLOW_ANY would, still through the SSRF guard and from the source
                               address) and logs each as would_deny_registry; see 'tollgate suggest'.
                               Same as the Gateway annotation tollgate.io/outbound-mode: report
  --access-log-format json|text  (default json)
  --no-access-log              write no access-log lines (metrics still count every request)
  --access-log-file PATH       append access-log lines to PATH instead of stdout; SIGUSR1 reopens it
                               (after logrotate moved it)
  --access-log-buffer BYTES    access-log bytes queued for a slow or stuck sink (default 4194304);
                               beyond that lines are dropped and counted in
                               tollgate_access_log_dropped_total{reason}, serving never waits
  --listen-address-override HOST  bind every snapshot listener on HOST (tests: 127.0.0.1)
  --port-map 80=18080,443=0    bind snapshot port 80 on 18080, 443 on an ephemeral port
  --drain-timeout MS           SIGTERM drain time (default 30000)
  --tls-hello-timeout MS       silent-client timeout of the TLS inspector (default 15000)
  --tcp-idle-timeout MS        override the TCP idle timeout of every tcp filter
  --max-connections N          per-listener downstream connection limit (default 16384). At start the
                               open-file soft limit is raised to the hard limit, and all listeners
                               together hold at most (limit - 128) / 2 connections (two descriptors
                               each; 128 kept for admin, DNS, logs); a larger N is capped, with a warning
  --log-level debug|info|warn|error (default info)
  --max-metric-series N        label combinations per metric (default 10000); beyond, samples of new
                               ones are dropped and counted in tollgate_metric_series_refused_total.
                               Hosts chosen by clients never become labels (BlackHoleCluster,
                               PassthroughCluster), so this is a backstop
  --headers-with-underscores drop|reject|allow  request header names containing '_' (e.g.
                               Transfer_Encoding, which some servers read as Transfer-Encoding):
                               drop them (default), answer 400, or forward them (Envoy's
                               headers_with_underscores_action)
  --watch                      re-read the -f paths when they change and apply valid changes
  --router-interface DEV       egress router kernel (init) mode: the interface that gets EGRESS_SOURCE
                               and the default route (default macvlan0, as OpenShift creates it)
  --router-macvlan-parent DEV  create --router-interface as a macvlan on DEV when it is missing
  --source-lease MS            floating source addresses: lease duration (default 2000; renewed every
                               MS/5; a holder that cannot renew drops the address after 0.7*MS);
                               leases come from the control plane (--control-plane)
  --control-plane HOST:PORT    take snapshots from 'tollgate control-plane' instead of -f files;
                               not ready until the first snapshot arrives, keeps serving the last one
                               while the control plane is away
  --control-plane-ca FILE      CA (PEM) that signed the control plane's certificate (required with
                               --control-plane)
  --bootstrap-token-file FILE  the token this proxy presents (required with --control-plane): a
                               --bootstrap-tokens entry, or in Kubernetes the pod's service-account
                               token (/var/run/secrets/kubernetes.io/serviceaccount/token); re-read
                               at every reconnect, so a rotated token is picked up
  --workload-cert-dir DIR      this proxy's mesh identity from files, as Istio mounts them: key.pem,
                               cert-chain.pem (leaf with a spiffe:// URI SAN first), root-cert.pem;
                               reloaded when they change (new connections use the new certificate).
                               Needed for mTLS: PeerAuthentication, Gateway tls.mode ISTIO_MUTUAL,
                               DestinationRule ISTIO_MUTUAL

Sidecar (--role sidecar, behind the capture rules of 'tollgate init'):
  identity from the pod when flags are absent: POD_NAMESPACE, POD_NAME, INSTANCE_IP,
  SERVICE_ACCOUNT, and labels from --labels-file (default /etc/istio/pod/labels when present)
  --labels-file PATH           downward-API labels file (key="value" lines)
  --interception-mode REDIRECT|TPROXY  how connections were captured (default REDIRECT)
  --status-ports on|off        readiness 15021 /healthz/ready, Prometheus 15090 /stats/prometheus,
                               merged 15020 (default for sidecars: on when POD_NAME or INSTANCE_IP is
                               set; gateways and routers: off unless asked for)
  --app-metrics URL            the app's Prometheus URL, merged into 15020 /stats/prometheus
`;

function fail(msg: string): never {
  throw new TollgateError('TG_CLI_USAGE', msg, { source: 'config' });
}

function parseHostPort(v: string, flag: string): { host: string; port: number } {
  const r = splitHostPort(v, 0);
  if (!r.ok || r.port === 0) fail(`${flag} ${JSON.stringify(v)}: expected HOST:PORT`);
  return { host: r.host, port: r.port };
}

function parseIntFlag(v: string, flag: string, min = 0): number {
  if (!/^\d+$/.test(v) || Number(v) < min) fail(`${flag} ${JSON.stringify(v)}: expected an integer >= ${min}`);
  return Number(v);
}

/** `tollgate run` flags (node:util parseArgs, as the other commands; RUN_USAGE documents them). */
const RUN_OPTIONS = {
  file: { type: 'string', short: 'f', multiple: true },
  filename: { type: 'string', multiple: true },
  role: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  labels: { type: 'string', short: 'l' },
  'labels-file': { type: 'string' },
  name: { type: 'string' },
  node: { type: 'string' },
  'router-interface': { type: 'string' },
  'router-macvlan-parent': { type: 'string' },
  'source-lease': { type: 'string' },
  admin: { type: 'string' },
  'dns-server': { type: 'string', multiple: true },
  'source-address': { type: 'string' },
  'allow-cidr': { type: 'string', multiple: true },
  workers: { type: 'string' },
  'explicit-proxy': { type: 'string' },
  'connect-ports': { type: 'string' },
  'access-log-format': { type: 'string' },
  'listen-address-override': { type: 'string' },
  'port-map': { type: 'string', multiple: true },
  'drain-timeout': { type: 'string' },
  'tls-hello-timeout': { type: 'string' },
  'tcp-idle-timeout': { type: 'string' },
  'dns-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'log-level': { type: 'string' },
  watch: { type: 'boolean' },
  'report-only': { type: 'boolean' },
  'no-access-log': { type: 'boolean' },
  'access-log-file': { type: 'string' },
  'access-log-buffer': { type: 'string' },
  'control-plane': { type: 'string' },
  'control-plane-ca': { type: 'string' },
  'bootstrap-token-file': { type: 'string' },
  'workload-cert-dir': { type: 'string' },
  'dns-min-ttl': { type: 'string' },
  'dns-max-ttl': { type: 'string' },
  'dns-max-stale': { type: 'string' },
  'dns-negative-ttl': { type: 'string' },
  'interception-mode': { type: 'string' },
  'status-ports': { type: 'string' },
  'app-metrics': { type: 'string' },
  'max-metric-series': { type: 'string' },
  'headers-with-underscores': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type RunFlags = ReturnType<typeof parseArgs<{ args: string[]; options: typeof RUN_OPTIONS; strict: true; allowPositionals: false }>>['values'];

function parseRunFlags(argv: readonly string[]): RunFlags {
  try {
    return parseArgs({ args: [...argv], options: RUN_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    return fail(errorMessage(e).replace(/\. To specify an option argument starting with a dash.*$/s, ''));
  }
}

function intFlag(v: string | undefined, flag: string, dflt: number, min = 0): number {
  return v === undefined ? dflt : parseIntFlag(v, flag, min);
}

export function parseRunArgs(argv: readonly string[]): RunOptions {
  const v = parseRunFlags(argv);
  const files: string[] = [...(v.file ?? []), ...(v.filename ?? [])];
  const roleText = v.role ?? 'gateway';
  if (roleText !== 'gateway' && roleText !== 'sidecar' && roleText !== 'router') fail(`--role ${roleText}: expected gateway, sidecar or router`);
  const role: ProxyRole = roleText;
  const namespace = v.namespace;
  const labelsArg = v.labels;
  const labelsFile = v['labels-file'];
  const name = v.name;
  const nodeName = v.node ?? (process.env['NODE_NAME'] || undefined);
  const routerInterface = v['router-interface'] ?? 'macvlan0';
  const routerMacvlanParent = v['router-macvlan-parent'];
  const leaseMs = intFlag(v['source-lease'], '--source-lease', 2000, 500);
  if (leaseMs > 60_000) fail('--source-lease: at most 60000 ms');
  const admin = v.admin === 'off' ? undefined : v.admin !== undefined ? parseHostPort(v.admin, '--admin') : { host: '127.0.0.1', port: 15000 };
  const dnsServers: string[] = [];
  for (const d of v['dns-server'] ?? []) {
    parseHostPort(d.includes(':') || d.startsWith('[') ? d : `${d}:53`, '--dns-server');
    dnsServers.push(d);
  }
  const sourceAddress = v['source-address'];
  if (sourceAddress !== undefined && !parseCidr(`${sourceAddress}/${sourceAddress.includes(':') ? 128 : 32}`)) fail(`--source-address ${sourceAddress}: not an IP address`);
  const allowCidrs: Cidr[] = [];
  for (const a of v['allow-cidr'] ?? []) {
    const c = parseCidr(a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`);
    if (!c) fail(`--allow-cidr ${a}: not a CIDR`);
    allowCidrs.push(c);
  }
  const workers = v.workers === 'auto' ? availableParallelism() : intFlag(v.workers, '--workers', 1, 1);
  const explicit = v['explicit-proxy'] !== undefined ? parseHostPort(v['explicit-proxy'], '--explicit-proxy') : undefined;
  const connectPorts = v['connect-ports'] !== undefined ? v['connect-ports'].split(',').map((p) => parseIntFlag(p.trim(), '--connect-ports', 1)) : [443];
  const formatText = v['access-log-format'] ?? 'json';
  if (formatText !== 'json' && formatText !== 'text') fail(`--access-log-format ${formatText}: expected json or text`);
  const format: AccessLogFormat = formatText;
  const override = v['listen-address-override'];
  const portMap = new Map<number, number>();
  for (const spec of v['port-map'] ?? []) {
    for (const part of spec.split(',')) {
      const m = /^(\d+)=(\d+)$/.exec(part.trim());
      if (!m) fail(`--port-map ${part}: expected SNAPSHOT_PORT=BIND_PORT`);
      portMap.set(Number(m[1]), Number(m[2]));
    }
  }
  const drain = intFlag(v['drain-timeout'], '--drain-timeout', 30_000);
  const hello = intFlag(v['tls-hello-timeout'], '--tls-hello-timeout', 15_000, 1);
  const idle = v['tcp-idle-timeout'] !== undefined ? parseIntFlag(v['tcp-idle-timeout'], '--tcp-idle-timeout', 1) : undefined;
  const dnsTimeout = v['dns-timeout'] !== undefined ? parseIntFlag(v['dns-timeout'], '--dns-timeout', 1) : undefined;
  const maxConn = intFlag(v['max-connections'], '--max-connections', 16_384, 1);
  const level = v['log-level'] ?? 'info';
  if (!isLogLevel(level)) fail(`--log-level ${level}: expected debug, info, warn, error or off`);
  const logLevel: LogLevel = level;
  const watchFiles = v.watch === true;
  const reportOnly = v['report-only'] === true;
  const accessLogOff = v['no-access-log'] === true;
  const accessLogFile = v['access-log-file'];
  const accessLogBuffer = intFlag(v['access-log-buffer'], '--access-log-buffer', DEFAULT_LOG_BUFFER_BYTES, 1024);
  const controlPlaneAddr = v['control-plane'] !== undefined ? parseHostPort(v['control-plane'], '--control-plane') : undefined;
  const controlPlaneCa = v['control-plane-ca'];
  const tokenFile = v['bootstrap-token-file'];
  const dnsCache: { minTtlSec?: number; maxTtlSec?: number; maxStaleSec?: number; negativeTtlSec?: number } = {};
  if (v['dns-min-ttl'] !== undefined) dnsCache.minTtlSec = parseIntFlag(v['dns-min-ttl'], '--dns-min-ttl');
  if (v['dns-max-ttl'] !== undefined) dnsCache.maxTtlSec = parseIntFlag(v['dns-max-ttl'], '--dns-max-ttl');
  if (v['dns-max-stale'] !== undefined) dnsCache.maxStaleSec = parseIntFlag(v['dns-max-stale'], '--dns-max-stale');
  if (v['dns-negative-ttl'] !== undefined) dnsCache.negativeTtlSec = parseIntFlag(v['dns-negative-ttl'], '--dns-negative-ttl');
  const mode = v['interception-mode'] ?? 'REDIRECT';
  if (mode !== 'REDIRECT' && mode !== 'TPROXY') fail(`--interception-mode ${mode}: expected REDIRECT or TPROXY`);
  const interceptionMode: InterceptionMode = mode;
  const sp = v['status-ports'];
  if (sp !== undefined && sp !== 'on' && sp !== 'off') fail(`--status-ports ${sp}: expected on or off`);
  const statusPorts = sp === undefined ? undefined : sp === 'on';
  const appMetricsUrl = v['app-metrics'];
  const maxMetricSeries = intFlag(v['max-metric-series'], '--max-metric-series', DEFAULT_MAX_SERIES_PER_METRIC, 1);
  const underscores = v['headers-with-underscores'] ?? 'drop';
  if (!(UNDERSCORE_HEADER_ACTIONS as readonly string[]).includes(underscores)) fail(`--headers-with-underscores ${underscores}: expected ${UNDERSCORE_HEADER_ACTIONS.join(', ')}`);
  const headersWithUnderscores = underscores as UnderscoreHeaderAction;
  if (!controlPlaneAddr && (controlPlaneCa !== undefined || tokenFile !== undefined)) fail('--control-plane-ca and --bootstrap-token-file go with --control-plane');
  if (controlPlaneAddr && (controlPlaneCa === undefined || tokenFile === undefined)) fail('--control-plane needs --control-plane-ca FILE and --bootstrap-token-file FILE: the stream is TLS and every proxy authenticates');
  const controlPlane = controlPlaneAddr && controlPlaneCa !== undefined && tokenFile !== undefined ? { ...controlPlaneAddr, caFile: controlPlaneCa, tokenFile } : undefined;
  if (controlPlane && files.length > 0) fail('--control-plane and -f are exclusive: the control plane holds the config');
  if (controlPlane && explicit) fail('--explicit-proxy is not supported with --control-plane yet; run the explicit proxy from -f files');
  if (controlPlane && watchFiles) fail('--watch applies to -f files; with --control-plane the control plane watches');
  const usingDefault = files.length === 0 && !controlPlane;
  if (usingDefault) {
    const dir = defaultConfigDir();
    if (!dir) fail('no -f given and the bundled examples/default config was not found');
    files.push(dir);
  }
  if (labelsArg !== undefined) {
    for (const kv of labelsArg.split(',')) {
      if (kv.trim() !== '' && kv.indexOf('=') <= 0) fail(`--labels ${kv}: expected key=value`);
    }
  }
  let identity;
  try {
    identity = podIdentity({ role, ...(namespace !== undefined ? { namespace } : {}), ...(labelsArg !== undefined ? { labels: labelsArg } : {}), ...(name !== undefined ? { name } : {}) }, process.env, labelsFile);
  } catch (e) {
    fail(`--labels-file: ${errorMessage(e)}`);
  }
  const inPod = process.env['POD_NAME'] !== undefined || process.env['INSTANCE_IP'] !== undefined;
  return {
    files,
    identity: { ...identity, ...(nodeName ? { nodeName } : {}) },
    interceptionMode,
    maxMetricSeries,
    headersWithUnderscores,
    // Sidecars in a pod get them unasked; gateways and routers in a pod ask (the manifests do).
    statusPorts: statusPorts ?? (role === 'sidecar' && inPod),
    ...(appMetricsUrl !== undefined ? { appMetricsUrl } : {}),
    ...(admin ? { admin } : {}),
    dnsServers,
    ...(sourceAddress ? { sourceAddress } : {}),
    allowCidrs,
    workers,
    ...(explicit ? { explicitProxy: { address: explicit.host, port: explicit.port, connectPorts } } : {}),
    accessLogFormat: format,
    accessLogOff,
    ...(accessLogFile !== undefined ? { accessLogFile } : {}),
    accessLogBufferBytes: accessLogBuffer,
    ...(override ? { listenAddressOverride: override } : {}),
    portMap,
    drainTimeoutMs: drain,
    tlsHelloTimeoutMs: hello,
    requestHeadTimeoutMs: 10_000,
    ...(idle !== undefined ? { tcpIdleTimeoutMs: idle } : {}),
    ...(dnsTimeout !== undefined ? { dnsTimeoutMs: dnsTimeout } : {}),
    dnsCache,
    maxConnectionsPerListener: maxConn,
    logLevel,
    usingDefaultConfig: usingDefault,
    watch: watchFiles,
    ...(reportOnly ? { reportOnly } : {}),
    ...(controlPlane ? { controlPlane } : {}),
    ...(v['workload-cert-dir'] !== undefined ? { workloadCertDir: v['workload-cert-dir'] } : {}),
    routerInterface,
    ...(routerMacvlanParent ? { routerMacvlanParent } : {}),
    sourceLease: { durationMs: leaseMs, renewMs: Math.max(50, Math.floor(leaseMs / 5)), marginMs: Math.floor(leaseMs * 0.3) },
  };
}

export interface Tollgate {
  readonly options: RunOptions;
  readonly runtime: Runtime;
  readonly services: DataPlaneServices;
  readonly metrics: MetricsRegistry;
  readonly admin: AdminServer | undefined;
  readonly snapshot: Snapshot;
  readonly proxy: ProxyIdentity;
  /** Objects in the config files the proxy started with (`--watch` refuses an edit that empties them). */
  readonly configObjects: number;
  /** Re-reads the config files and applies the new snapshot (keeps the old one on error). */
  reload(): Promise<void>;
  /** Applies a snapshot built elsewhere (watch mode); rejects and keeps the old one when it cannot. */
  apply(snapshot: Snapshot): Promise<void>;
  /** Readiness off, listeners closed, connections drained (up to drainMs), admin closed. */
  stop(drainMs?: number): Promise<void>;
}

export interface StartOverrides {
  readonly accessLogOut?: { write(s: string): unknown };
  readonly logOut?: { write(s: string): unknown };
  readonly silentAccessLog?: boolean;
  readonly httpHandler?: HttpConnectionHandlerFactory;
  /** Injected local-address check (tests). */
  readonly isLocalAddress?: (ip: string) => boolean;
  /** The mesh identity to use instead of --workload-cert-dir (tests, the control plane's CSR client). */
  readonly workloadIdentity?: WorkloadIdentitySource;
}

interface DataPlaneParts {
  readonly runtime: Runtime;
  readonly services: DataPlaneServices;
  readonly registry: MetricsRegistry;
  readonly admin: AdminServer | undefined;
  readonly status: StatusServers | undefined;
  readonly lag: LoopLag;
  readonly host: HostAgents;
  /** Stops watching --workload-cert-dir. */
  readonly closeIdentity: () => void;
}

/** The bounded sink of the access log: --access-log-file, else stdout. */
function accessLogSink(options: RunOptions, metrics: DataPlaneMetrics): LogSink {
  const dropped = (reason: string, lines: number): void => metrics.accessLogDropped.labels(reason).inc(lines);
  if (options.accessLogFile === undefined) return stdoutSink(options.accessLogBufferBytes, dropped);
  try {
    return FileSink.open(options.accessLogFile, options.accessLogBufferBytes, dropped);
  } catch (e) {
    throw new TollgateError('TG_CLI_USAGE', `--access-log-file ${options.accessLogFile}: ${errorMessage(e)}`, { source: 'config', cause: e });
  }
}

/** The lease API client: same TLS trust and token as the snapshot stream. */
function leaseClient(cp: NonNullable<RunOptions['controlPlane']>, timeoutMs: number): HttpLeaseClient {
  let ca: Buffer;
  try {
    ca = readFileSync(cp.caFile);
  } catch (e) {
    throw new TollgateError('TG_CLI_USAGE', `--control-plane-ca: ${errorMessage(e)}`, { source: 'config', cause: e });
  }
  return new HttpLeaseClient(cp.host, cp.port, timeoutMs, { ca, token: () => readFileSync(cp.tokenFile, 'utf8').trim() });
}

/** Metrics, upstream cluster manager, access log, runtime and admin server for one proxy. */
async function buildDataPlane(options: RunOptions, proxy: ProxyIdentity, overrides: StartOverrides, logger: Logger): Promise<DataPlaneParts> {
  const registry = new MetricsRegistry({ maxSeriesPerMetric: options.maxMetricSeries });
  const metrics = new DataPlaneMetrics(registry, proxy);
  const lag = loopLag;
  lag.enable();
  metrics.eventLoopLag.collect = () => {
    metrics.eventLoopLag.labels().set(Math.round(lag.takeP99Ms() * 100) / 100);
  };
  const { identity, closeIdentity } = workloadIdentityOf(options, overrides, logger);
  const clusters = new ClusterManager({
    identity,
    dnsServers: options.dnsServers,
    allowCidrs: options.allowCidrs,
    ...(options.sourceAddress ? { defaultSourceAddress: options.sourceAddress } : {}),
    ...(options.dnsTimeoutMs !== undefined ? { dnsTimeoutMs: options.dnsTimeoutMs } : {}),
    ...(options.dnsCache.minTtlSec !== undefined ? { dnsMinTtlSec: options.dnsCache.minTtlSec } : {}),
    ...(options.dnsCache.maxTtlSec !== undefined ? { dnsMaxTtlSec: options.dnsCache.maxTtlSec } : {}),
    ...(options.dnsCache.maxStaleSec !== undefined ? { dnsMaxStaleSec: options.dnsCache.maxStaleSec } : {}),
    ...(options.dnsCache.negativeTtlSec !== undefined ? { dnsNegativeTtlSec: options.dnsCache.negativeTtlSec } : {}),
    ...(overrides.isLocalAddress ? { isLocalAddress: overrides.isLocalAddress } : {}),
    metrics,
  });
  const silent = overrides.silentAccessLog === true || options.accessLogOff;
  const out = overrides.accessLogOut ?? (silent ? undefined : accessLogSink(options, metrics));
  const accessLog = new AccessLogger({ format: options.accessLogFormat, ...(out ? { out } : {}), ...(silent ? { silent: true } : {}) });
  const services: DataPlaneServices = {
    clusters,
    accessLog,
    metrics,
    logger,
    identity,
    limits: {
      tlsHelloTimeoutMs: options.tlsHelloTimeoutMs,
      maxHelloBytes: 16 * 1024,
      requestHeadTimeoutMs: options.requestHeadTimeoutMs,
      ...(options.tcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs: options.tcpIdleTimeoutMs } : {}),
    },
  };
  const runtime = new Runtime({
    services,
    ...(options.listenAddressOverride ? { listenAddressOverride: options.listenAddressOverride } : {}),
    portMap: options.portMap,
    drainTimeoutMs: options.drainTimeoutMs,
    maxConnectionsPerListener: options.maxConnectionsPerListener,
    interceptionMode: options.interceptionMode,
    ...(options.maxConnectionsTotal !== undefined ? { connectionBudget: new ConnectionBudget(options.maxConnectionsTotal) } : {}),
    httpHandler: overrides.httpHandler ?? httpEngine({ headersWithUnderscores: options.headersWithUnderscores }),
    afterApply: collectAfterApply,
  });
  // The admin server comes up first, so /ready can say "not yet" while listeners bind.
  let admin: AdminServer | undefined;
  const adminAddr = options.admin ?? undefined;
  if (adminAddr) {
    admin = await startAdmin(adminAddr, { runtime, metrics: registry, logger, sourceAddresses: () => host.floatingStatus() });
  }
  const ownAdminPorts = [...(admin && adminPort(admin) !== undefined ? [adminPort(admin)!] : []), ...(options.siblingPorts ?? [])];
  for (const p of ownAdminPorts) runtime.addSelfPort(p);
  const lease = options.sourceLease;
  const host = new HostAgents({
    logger,
    metrics: registry,
    ...(options.controlPlane ? { arbiter: leaseClient(options.controlPlane, Math.max(200, lease.renewMs)) } : {}),
    holder: `${hostname()}/${process.pid}`,
    lease,
    singleProcess: options.workers <= 1,
    routerInterface: options.routerInterface,
    ...(options.routerMacvlanParent ? { routerMacvlanParent: options.routerMacvlanParent } : {}),
    // The egress router's fallback DNAT must not swallow the kubelet's probes.
    ownPorts: [...ownAdminPorts, ...(options.statusPorts ? Object.values(STATUS_PORTS) : [])],
  });
  let status: StatusServers | undefined;
  if (options.statusPorts) {
    status = await startStatusServers({ host: '0.0.0.0', ...(options.appMetricsUrl !== undefined ? { appMetricsUrl: options.appMetricsUrl } : {}) }, { runtime, metrics: registry });
    for (const p of Object.values(status.ports)) runtime.addSelfPort(p);
  }
  return { runtime, services, registry, admin, status, lag, host, closeIdentity };
}

/** The proxy's mesh identity: given by the caller, read from --workload-cert-dir, or empty (mTLS refused until one is set). */
function workloadIdentityOf(options: RunOptions, overrides: StartOverrides, logger: Logger): { identity: WorkloadIdentitySource; closeIdentity: () => void } {
  if (overrides.workloadIdentity !== undefined) return { identity: overrides.workloadIdentity, closeIdentity: () => undefined };
  const holder = new WorkloadIdentityHolder();
  if (options.workloadCertDir === undefined) return { identity: holder, closeIdentity: () => undefined };
  try {
    const w = watchWorkloadCertDir(options.workloadCertDir, holder, (msg, fields) => logger.info(msg, fields));
    logger.info('workload certificate loaded', { dir: options.workloadCertDir, spiffeId: holder.current()?.spiffeId });
    return { identity: holder, closeIdentity: () => w.close() };
  } catch (e) {
    throw new TollgateError('TG_CLI_USAGE', `--workload-cert-dir: ${errorMessage(e)}`, { source: 'config', cause: e });
  }
}

/** Starts a data plane in this process. Rejects with TollgateError on bad config or bind failure. */
export async function startTollgate(options: RunOptions, overrides: StartOverrides = {}): Promise<Tollgate> {
  const logger = new Logger(options.logLevel, overrides.logOut ?? process.stderr);
  let load: SnapshotReply;
  try {
    load = await loadSnapshotIsolated({ paths: options.files, identity: options.identity, options: snapshotOptions(options) });
  } catch (e) {
    throw new TollgateError('TG_CLI_USAGE', errorMessage(e), { source: 'config', cause: e });
  }
  for (const n of load.notes) logger.info(n);
  for (const line of load.errors) logger.error(line);
  for (const line of load.notices) logger.debug(line);
  if (!load.snapshot) throw new TollgateError('TG_CONFIG_INVALID', `config has errors; nothing started (${load.errors.length} errors)`, { source: 'config' });
  const snapshot = load.snapshot;
  const proxy = load.proxy!;
  if (snapshot.listeners.length === 0 && !snapshot.routerKernel) {
    throw new TollgateError('TG_NO_LISTENERS', `the config gives proxy ${proxy.role} ${proxy.namespace}/${proxy.name || '-'} labels ${JSON.stringify(proxy.labels)} no listener; check --role/--namespace/--labels/--name`, { source: 'config' });
  }
  const { runtime, services, registry, admin, status, lag, host, closeIdentity } = await buildDataPlane(options, proxy, overrides, logger);
  try {
    await host.apply(snapshot);
    await runtime.apply(snapshot);
  } catch (e) {
    closeIdentity();
    await host.stop();
    await admin?.close();
    await status?.close();
    lag.disable();
    throw e;
  }
  let current = snapshot;
  return {
    options,
    runtime,
    services,
    metrics: registry,
    admin,
    proxy,
    configObjects: load.resources,
    get snapshot() {
      return current;
    },
    async reload() {
      const l = await loadSnapshotIsolated(reloadRequest(options, proxy));
      if (!l.snapshot) throw new TollgateError('TG_CONFIG_INVALID', `reload: config has errors; keeping the running snapshot:\n${l.errors.join('\n')}`, { source: 'config' });
      if (l.snapshot.version === current.version) return;
      await host.apply(l.snapshot);
      await runtime.apply(l.snapshot);
      current = l.snapshot;
    },
    async apply(next: Snapshot) {
      if (next.version === current.version) return;
      await host.apply(next);
      await runtime.apply(next);
      current = next;
    },
    async stop(drainMs?: number) {
      // Floating addresses move first, so the standby takes new connections while this one drains.
      await host.stop();
      await runtime.shutdown(drainMs ?? options.drainTimeoutMs);
      await admin?.close();
      await status?.close();
      lag.disable();
      closeIdentity();
    },
  };
}

export interface ControlPlaneProxy {
  readonly options: RunOptions;
  readonly runtime: Runtime;
  readonly services: DataPlaneServices;
  readonly admin: AdminServer | undefined;
  readonly proxy: ProxyIdentity;
  readonly client: ControlPlaneClient;
  /** This proxy's workload certificate: issued by the control plane's CA and renewed before it expires (or from --workload-cert-dir). */
  readonly identity: WorkloadIdentitySource;
  /** Undefined until the first snapshot is applied (the proxy is not ready before that). */
  readonly snapshot: Snapshot | undefined;
  stop(drainMs?: number): Promise<void>;
}

/**
 * `run --control-plane`: the data plane starts with no snapshot (not ready, nothing bound — never
 * an empty allow-all config) and applies what the control plane pushes, ACKing or NACKing it.
 */
export async function startFromControlPlane(options: RunOptions, overrides: StartOverrides = {}): Promise<ControlPlaneProxy> {
  const cp = options.controlPlane;
  if (!cp) throw new TollgateError('TG_CLI_USAGE', 'startFromControlPlane needs --control-plane', { source: 'config' });
  const logger = new Logger(options.logLevel, overrides.logOut ?? process.stderr);
  const id = options.identity;
  const proxy: ProxyIdentity = { role: (id.role ?? 'gateway') as ProxyRole, namespace: id.namespace ?? 'default', name: id.name ?? '', labels: parseLabels(id.labels), ...(id.nodeName ? { nodeName: id.nodeName } : {}) };
  // The mesh identity the data plane presents on mTLS: issued by the control plane's CA (filled by
  // the CSR client below), unless certificate files (--workload-cert-dir) or the caller provide one.
  const issued = options.workloadCertDir === undefined && overrides.workloadIdentity === undefined ? new WorkloadIdentityHolder() : undefined;
  const { runtime, services, admin, status, lag, host, closeIdentity } = await buildDataPlane(options, proxy, issued ? { ...overrides, workloadIdentity: issued } : overrides, logger);
  let current: Snapshot | undefined;
  let ca: Buffer;
  try {
    ca = readFileSync(cp.caFile);
    readFileSync(cp.tokenFile);
  } catch (e) {
    await admin?.close();
    lag.disable();
    throw new TollgateError('TG_CLI_USAGE', errorMessage(e), { source: 'config', cause: e });
  }
  // The --control-plane-ca file, plus the roots the control plane announced (a CA rotation re-signs
  // its own server certificate: the new root must be trusted before the file is updated).
  const trustedRoots = (): string => {
    try {
      ca = readFileSync(cp.caFile);
    } catch {
      // Keep the last good copy: a file being replaced must not cut the proxy off.
    }
    return ca.toString() + '\n' + (issued?.current()?.rootCertsPem ?? '');
  };
  const token = (): string => readFileSync(cp.tokenFile, 'utf8').trim();
  let certs: WorkloadCertClient | undefined;
  const client = new ControlPlaneClient({
    host: cp.host,
    port: cp.port,
    node: proxy,
    ca: trustedRoots,
    caFile: cp.caFile,
    onTrust: (roots, signer) => certs?.trustChanged(roots, signer),
    token,
    applier: {
      apply: async (snapshot: Snapshot) => {
        await host.apply(snapshot);
        const r = await runtime.apply(snapshot);
        current = snapshot;
        logger.info(`applied snapshot ${snapshot.version} from the control plane`);
        return r;
      },
    },
    log: (line) => logger.info(line),
    logError: (line) => logger.error(line),
  });
  client.start();
  if (issued) {
    // Loaded after the stream starts: the X.509 library takes a moment to import.
    const { WorkloadCertClient } = await import('../controlplane/workload-certs.js');
    certs = new WorkloadCertClient({ host: cp.host, port: cp.port, ca: trustedRoots, token, holder: issued, log: (line) => logger.info(line) });
    certs.start();
  }
  return {
    options,
    runtime,
    services,
    admin,
    proxy,
    client,
    identity: services.identity ?? new WorkloadIdentityHolder(),
    get snapshot() {
      return current;
    },
    async stop(drainMs?: number) {
      certs?.stop();
      client.stop();
      await host.stop();
      await runtime.shutdown(drainMs ?? options.drainTimeoutMs);
      await admin?.close();
      await status?.close();
      lag.disable();
      closeIdentity();
    },
  };
}

function snapshotOptions(o: RunOptions): SnapshotOptions {
  return { ...(o.explicitProxy ? { explicitProxy: o.explicitProxy } : {}), ...(o.reportOnly ? { reportOnly: true } : {}) };
}

/** The files again, for the identity the proxy started with (inferred labels stay fixed). */
function reloadRequest(options: RunOptions, proxy: ProxyIdentity): SnapshotRequest {
  const labels = Object.entries(proxy.labels).map(([k, v]) => `${k}=${v}`).join(',');
  return { paths: options.files, identity: { ...options.identity, role: proxy.role, namespace: proxy.namespace, labels, name: proxy.name }, options: snapshotOptions(options) };
}

/**
 * `run --watch`: apply every valid change of the -f paths; log and skip invalid ones. A config
 * that suddenly has no objects is refused like any invalid one (an emptied directory must not
 * turn the proxy into one with no routes).
 */
function watchConfig(tg: Tollgate, logger: Logger): PathWatch {
  let lastResources = tg.configObjects;
  let running = false;
  let again = false;
  const load = async (): Promise<void> => {
    const l = await loadSnapshotIsolated(reloadRequest(tg.options, tg.proxy));
    if (!l.snapshot) {
      logger.error(`config change rejected, keeping ${tg.snapshot.version}:\n${l.errors.join('\n')}`);
      return;
    }
    if (lastResources > 0 && l.resources === 0) {
      logger.error(`config change rejected, keeping ${tg.snapshot.version}: the config files now yield no objects (the running config has ${lastResources})`);
      return;
    }
    lastResources = l.resources;
    await tg.apply(l.snapshot);
    logger.info('config change applied', { version: tg.snapshot.version });
  };
  // One load at a time: a change during a load runs one more load after it, never two at once.
  const onChange = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    load().then(
      () => undefined,
      (err: unknown) => logger.error(`config change could not be applied, keeping ${tg.snapshot.version}: ${errorMessage(err)}`),
    ).finally(() => {
      running = false;
      if (again) {
        again = false;
        onChange();
      }
    });
  };
  return watchPaths(tg.options.files, { debounceMs: 200, maxDebounceMs: 1000 }, onChange);
}

/** The `run` subcommand. Resolves with the process exit code once the proxy has stopped. */
export async function runCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  let options: RunOptions;
  try {
    options = parseRunArgs(argv);
  } catch (e) {
    process.stderr.write(`tollgate run: ${errorMessage(e)}\n\n${RUN_USAGE}`);
    return 2;
  }
  if (options.workers > 1 && !isWorkerProcess()) {
    const admin = options.admin !== undefined && 'port' in options.admin ? options.admin : undefined; // --admin is always TCP
    return runPrimary({ workers: options.workers, argv, ...(admin ? { admin } : {}), log: (l) => process.stderr.write(`tollgate: ${l}\n`) });
  }
  options = withFdLimits(options, (l) => process.stderr.write(`tollgate run: ${l}\n`));
  if (isWorkerProcess() && options.admin) {
    // Each worker's admin is private (a unix socket only the primary uses); the primary serves the
    // public one, whose port this worker must never dial either.
    const publicAdmin = options.admin;
    options = { ...options, admin: { socketPath: privateAdminSocket() }, siblingPorts: 'port' in publicAdmin ? [publicAdmin.port] : [] };
  }
  if (options.controlPlane) {
    let px: ControlPlaneProxy;
    try {
      px = await startFromControlPlane(options);
    } catch (e) {
      process.stderr.write(`tollgate run: ${errorMessage(e)}\n`);
      return 1;
    }
    if (isWorkerProcess() && px.admin) reportWorkerAdmin(px.admin);
    px.services.logger.info(`tollgate waiting for its first snapshot from ${options.controlPlane.host}:${options.controlPlane.port} (not ready until then)`, {
      proxy: `${px.proxy.role} ${px.proxy.namespace} ${px.proxy.name}`,
      admin: px.admin ? adminText(px.admin) : 'off',
    });
    return leaveCluster(await serveUntilSignal(px.services, options.drainTimeoutMs, () => px.stop()));
  }
  let tg: Tollgate;
  try {
    tg = await startTollgate(options);
  } catch (e) {
    process.stderr.write(`tollgate run: ${errorMessage(e)}\n`);
    return 1;
  }
  const logger = tg.services.logger;
  if (isWorkerProcess() && tg.admin) reportWorkerAdmin(tg.admin);
  const bound = tg.runtime.listeners().map((l) => `${l.name} -> ${l.boundAddress}:${l.boundPort}`);
  logger.info(`tollgate running snapshot ${tg.snapshot.version}${options.usingDefaultConfig ? ' (bundled default config)' : ''}`, {
    listeners: bound,
    admin: tg.admin ? adminText(tg.admin) : 'off',
  });
  const watcher = options.watch ? watchConfig(tg, logger) : undefined;
  const reload = (): void => {
    tg.reload().then(
      () => logger.info('SIGHUP: config reloaded', { version: tg.snapshot.version }),
      (e: unknown) => logger.error(`SIGHUP: reload failed, keeping ${tg.snapshot.version}: ${errorMessage(e)}`),
    );
  };
  return leaveCluster(
    await serveUntilSignal(tg.services, options.drainTimeoutMs, () => {
      watcher?.close();
      return tg.stop();
    }, reload),
  );
}

/** Raises the open-file limit and fits the connection limits under it (warning when it caps). */
function withFdLimits(options: RunOptions, warn: (line: string) => void): RunOptions {
  const r = raiseFdLimit();
  if (r.problem) warn(`warning: ${r.problem}`);
  if (!r.limits) return options;
  const budget = connectionBudget(r.limits.soft);
  if (options.maxConnectionsPerListener > budget) {
    warn(`warning: --max-connections ${options.maxConnectionsPerListener} does not fit the open-file limit ${r.limits.soft} (two descriptors per connection, ${RESERVED_FDS} reserved); capped to ${budget}`);
  }
  return { ...options, maxConnectionsPerListener: Math.min(options.maxConnectionsPerListener, budget), maxConnectionsTotal: budget };
}

function reportWorkerAdmin(admin: AdminServer): void {
  if ('socketPath' in admin.address) reportAdmin(admin.address.socketPath);
}

/** A --workers worker's IPC channel keeps it alive: close it once the data plane has stopped. */
function leaveCluster(code: number): number {
  if (isWorkerProcess()) process.disconnect?.();
  return code;
}

/**
 * SIGTERM/SIGINT: drain and resolve with the exit code; SIGHUP: `onHup` (reload) when given;
 * SIGUSR1: reopen the access-log file (logrotate).
 */
function serveUntilSignal(services: DataPlaneServices, drainMs: number, stopAll: () => Promise<void>, onHupAction?: () => void): Promise<number> {
  const logger = services.logger;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const detach = (): void => {
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGHUP', onHup);
      process.removeListener('SIGUSR1', onUsr1);
    };
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info(`${signal}: draining (up to ${drainMs} ms)`);
      stopAll().then(
        () => {
          detach();
          resolve(0);
        },
        (e: unknown) => {
          logger.error(`shutdown failed: ${errorMessage(e)}`);
          detach();
          resolve(1);
        },
      );
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    const onHup = (): void => onHupAction?.();
    const onUsr1 = (): void => {
      services.accessLog.reopen();
      logger.info('SIGUSR1: access log reopened');
    };
    process.on('SIGUSR1', onUsr1);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    process.on('SIGHUP', onHup);
  });
}
