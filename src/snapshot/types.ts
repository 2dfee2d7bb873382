/**
 * A snapshot is everything one proxy runs, as plain readonly JSON-serialisable data, shaped like
 * Envoy's xDS resources: listeners -> filter chains -> (route tables | tcp proxy) -> clusters ->
 * endpoints. It is produced per proxy identity by snapshot/generate and consumed by the data plane
 * (and by trace, through the same compiled matchers). Never mutated once built.
 */

export type ProxyRole = 'gateway' | 'sidecar' | 'router';

export interface ProxyIdentity {
  readonly role: ProxyRole;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The Kubernetes node the proxy runs on (NODE_NAME from the downward API): which of a source
   * address pool's addresses this replica may use (OpenShift SDN HostSubnet.host).
   */
  readonly nodeName?: string;
}

/** Where a snapshot element came from, so trace/analyze/config-dump can point at the YAML. */
export interface Origin {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly file: string;
  /** Line of the resource; `path` (e.g. ['spec', 'http', 0]) locates the field within it. */
  readonly line: number;
  readonly path?: readonly (string | number)[];
}

export interface Snapshot {
  readonly version: string; // content hash of everything below
  readonly proxy: ProxyIdentity;
  readonly listeners: readonly Listener[];
  readonly routes: readonly RouteConfig[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly EndpointSet[];
  readonly policy: ProxyPolicy;
  /**
   * Source addresses this proxy assigns to its own interfaces at run time: floating addresses it
   * may win a lease for, and the egress router's EGRESS_SOURCE in kernel (init) mode. They are
   * normally absent when a snapshot is applied, so an apply-time "is this address local" check
   * must skip them (the connection-time check still fails closed while one is not held).
   */
  readonly managedAddresses?: readonly ManagedAddress[];
  /** Egress router in kernel (init) mode: the rules the proxy programs into nftables (no listeners). */
  readonly routerKernel?: RouterKernelPlan;
  readonly admin?: { readonly address: string; readonly port: number };
  /**
   * Key material the clusters and listeners name by `credentialName` (Kubernetes Secrets), like
   * Envoy's SDS: carried to the data plane with the snapshot, never shown by a view
   * (config_dump, proxy-config, config-dump print `redactSnapshot(s)`; docs/traffic-management.md).
   * Absent when no credentialName resolves.
   */
  readonly secrets?: readonly SnapshotSecret[];
}

export interface RouterKernelPlan {
  /** EGRESS_SOURCE: added to the router interface and used as the SNAT address. */
  readonly source: string;
  /** Prefix length of EGRESS_SOURCE's subnet when written IP/prefix; else /32 with an on-link gateway route, as OpenShift does. */
  readonly sourcePrefix?: number;
  /** EGRESS_GATEWAY: the default route of the router's network namespace. */
  readonly gateway?: string;
  /** One DNAT per EGRESS_DESTINATION line, in file order. `name` is the rule's metric label. */
  readonly rules: readonly { readonly name: string; readonly port: number; readonly protocol: 'tcp' | 'udp'; readonly destination: string; readonly destinationPort: number; readonly line: number }[];
  /** The bare-IP line: every other port and protocol goes there. */
  readonly fallback?: { readonly name: string; readonly destination: string; readonly line: number };
  readonly origin?: Origin;
}

export interface ManagedAddress {
  readonly address: string;
  /** 'floating': held by one replica at a time under a lease; 'router': the kernel-mode egress router's EGRESS_SOURCE. */
  readonly managedBy: 'floating' | 'router';
  /** Lease name (floating): replicas compete for it through the control plane or the Kubernetes API. */
  readonly lease?: string;
  /** What asked for it: `ServiceEntry ns/name`, `NetNamespace ns`, `Deployment ns/name`. */
  readonly source: string;
  readonly origin?: Origin;
}

/** One resolved Secret (PEM text). Only the keys the Secret has are present. */
export interface SnapshotSecret {
  readonly name: string; // "namespace/name"
  readonly certificateChain?: string; // tls.crt (or cert)
  readonly privateKey?: string; // tls.key (or key)
  readonly caCertificates?: string; // ca.crt (or cacert)
  readonly origin?: Origin;
}

export interface ProxyPolicy {
  /** REGISTRY_ONLY (Tollgate's default) denies hosts not in the registry; ALLOW_ANY lets them through. */
  readonly outboundTrafficPolicy: 'REGISTRY_ONLY' | 'ALLOW_ANY';
  /** `report`: the explicit proxy passes destinations outside the registry and logs them (would_deny_registry). */
  readonly outboundMode?: 'report';
  /** Per caller namespace fixed source addresses (k8s.ovn.org/v1 EgressIP), resolved to caller IPs. */
  readonly egressIps: readonly EgressIpRule[];
  /**
   * Request path normalisation (meshConfig.pathNormalization in the `istio` ConfigMap); absent:
   * the data plane default, MERGE_SLASHES (docs/egress-security.md).
   */
  readonly pathNormalization?: 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
  /** AuthorizationPolicies that select this proxy's workload, in (namespace, name) order; absent: none. */
  readonly authorization?: readonly AuthzPolicy[];
  /** A gateway's x-forwarded-client-cert mode (meshConfig gatewayTopology); absent: SANITIZE_SET (dataplane/http/xfcc.ts). */
  readonly forwardClientCertDetails?: 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
}

/**
 * One AuthorizationPolicy as the data plane evaluates it (dataplane/authz): Istio's field names,
 * every list present only when the policy set it (an empty list and an absent one differ in Istio).
 */
export interface AuthzPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** `istio.io/dry-run` / `tollgate.io/dry-run: "true"`: evaluated and logged, never enforced. */
  readonly dryRun: boolean;
  /** Absent: the policy has no rules (an ALLOW policy then allows nothing). */
  readonly rules?: readonly AuthzRule[];
  readonly origin?: Origin;
}
export interface AuthzRule {
  readonly from?: readonly AuthzSource[];
  readonly to?: readonly AuthzOperation[];
  readonly when?: readonly AuthzCondition[];
}
export type AuthzSourceField = 'principals' | 'notPrincipals' | 'requestPrincipals' | 'notRequestPrincipals' | 'namespaces' | 'notNamespaces' | 'ipBlocks' | 'notIpBlocks' | 'remoteIpBlocks' | 'notRemoteIpBlocks';
export type AuthzOperationField = 'hosts' | 'notHosts' | 'ports' | 'notPorts' | 'methods' | 'notMethods' | 'paths' | 'notPaths';
export type AuthzSource = { readonly [K in AuthzSourceField]?: readonly string[] };
export type AuthzOperation = { readonly [K in AuthzOperationField]?: readonly string[] };
export interface AuthzCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface EgressIpRule {
  readonly name: string;
  readonly sourceAddresses: readonly string[]; // the EgressIP's egressIPs; the first local one is bound
  readonly namespaces: readonly string[]; // namespaces selected by namespaceSelector
  /** Pod IPs (from the config) of callers in those namespaces that match podSelector. */
  readonly callerIps: readonly string[];
  /** Caller IP -> namespace, for metrics/logs (source_workload_namespace). */
  readonly callerNamespaces: Readonly<Record<string, string>>;
  /**
   * The rule selects pods (a podSelector): it applies to its callers' pod IPs only. Without it the
   * whole namespaces are selected, and a mesh caller whose certificate proves one of them gets it.
   */
  readonly podSelected?: true;
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// Listeners

export interface Listener {
  readonly name: string; // e.g. "0.0.0.0_80"
  readonly address: string;
  readonly port: number;
  /** Sidecar virtual outbound listener: the original destination picks the real listener. */
  readonly useOriginalDst?: boolean;
  /** Sidecar virtual inbound listener: chains match the captured connection's original destination port. */
  readonly inboundCapture?: boolean;
  /**
   * false: the listener is only reached through the virtual outbound listener (Envoy's
   * bind_to_port: false), so a sidecar never takes the ports its workload uses.
   */
  readonly bindToPort?: boolean;
  readonly filterChains: readonly FilterChain[];
  /** Used when no chain matches; absent means "close the connection and log TG_NO_FILTER_CHAIN". */
  readonly defaultFilterChain?: FilterChain;
  readonly origin?: Origin;
}

export interface FilterChainMatch {
  /** SNI values (exact or `*.suffix`) read by the TLS inspector; empty/absent = any. */
  readonly serverNames?: readonly string[];
  /** 'tls' when the chain needs a ClientHello (passthrough); 'raw_buffer' for plaintext. */
  readonly transportProtocol?: 'tls' | 'raw_buffer';
  /** Original destination address CIDRs (TCP ServiceEntries sharing a port). */
  readonly destinationPrefixes?: readonly string[];
  /** Original destination port (the sidecar's virtual inbound listener, one chain per workload port). */
  readonly destinationPort?: number;
}

export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly filter: NetworkFilter;
  /** TLS terminated by the proxy (Gateway servers with tls.mode SIMPLE/MUTUAL). */
  readonly tls?: DownstreamTls;
  /**
   * Mesh mTLS accepted on this chain (a sidecar's inbound port under PeerAuthentication STRICT or
   * PERMISSIVE; a Gateway server with tls.mode ISTIO_MUTUAL): a TLS client is terminated with the
   * proxy's workload certificate and must present one that chains to the mesh roots. STRICT refuses
   * plaintext; PERMISSIVE serves it too. Absent: no mTLS (DISABLE).
   */
  readonly mtls?: MtlsMode;
  readonly origin?: Origin;
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE';

export interface DownstreamTls {
  /** MUTUAL: a client certificate from the CA is required; OPTIONAL_MUTUAL: one that is sent must verify. */
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL';
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string; // "namespace/name" of a Secret
  /** Client certificates must carry one of these SANs (URI, DNS or IP), for MUTUAL/OPTIONAL_MUTUAL. */
  readonly subjectAltNames?: readonly string[];
  /** Protocol versions accepted (Gateway min/maxProtocolVersion; default TLS 1.2 to 1.3). */
  readonly minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list for TLS <= 1.2 (Gateway cipherSuites). */
  readonly ciphers?: string;
  /** The server's TLS settings cannot be enforced: the data plane rejects the snapshot. */
  readonly unsupported?: string;
}

export type NetworkFilter = HttpConnectionManager | TcpProxy | DenyFilter | ExplicitProxy;

/** An explicit forward proxy (CONNECT and absolute-form requests): OpenShift's http-proxy router mode. */
export interface ExplicitProxy {
  readonly type: 'explicit_proxy';
  readonly statPrefix: string;
  /** First match wins; `deny: true` entries refuse. With `acl` absent the registry decides. */
  readonly acl?: readonly { readonly deny: boolean; readonly pattern: string }[];
  readonly connectPorts: readonly number[];
  readonly sourceAddress?: string;
  /** Registry mode only: pass destinations outside the registry (ALLOW_ANY) and log them as would_deny_registry. */
  readonly reportOnly?: boolean;
  /** The HTTP filters of its absolute-form (http://) requests, as HttpConnectionManager.httpFilters. */
  readonly httpFilters?: readonly HttpFilterConfig[];
}

export interface HttpConnectionManager {
  readonly type: 'http';
  readonly statPrefix: string;
  /** Name of a RouteConfig in snapshot.routes. */
  readonly routeConfigName: string;
  /** Envoy bootstrap listeners may disable access logs; Istio-derived ones always log. */
  readonly accessLog: boolean;
  /**
   * The HTTP filters every request on this listener runs, in order (Envoy's `http_filters`); the
   * last one is `router`. Absent: DEFAULT_HTTP_FILTERS. Names are the data plane's filter registry
   * (dataplane/http/filters/registry.ts); a name it does not know rejects the snapshot.
   */
  readonly httpFilters?: readonly HttpFilterConfig[];
}

/** One entry of a listener's HTTP filter chain: a registry name and that filter's own config. */
export interface HttpFilterConfig {
  readonly name: string;
  readonly config?: unknown;
}

/**
 * The chain of a listener that names none: fault injection, local rate limit, route header
 * mutations, request mirroring, then the router (the order Istio's sidecars and gateways run them).
 */
export const DEFAULT_HTTP_FILTERS: readonly HttpFilterConfig[] = Object.freeze([{ name: 'fault' }, { name: 'local_ratelimit' }, { name: 'header_mutation' }, { name: 'mirror' }, { name: 'router' }].map((f) => Object.freeze(f)));

/**
 * Per-filter settings of a route or virtual host, by filter name (Envoy's `typed_per_filter_config`):
 * a route's entry replaces its virtual host's, which replaces the listener-level config.
 */
export type PerFilterConfig = Readonly<Record<string, unknown>>;

export interface TcpProxy {
  readonly type: 'tcp';
  readonly statPrefix: string;
  /** Weighted clusters; a single entry for the common case. */
  readonly clusters: readonly WeightedCluster[];
  /** For SNI routes whose cluster has resolution NONE: connect to the SNI host itself. */
  readonly idleTimeoutMs: number;
  readonly routeName?: string;
  readonly origin?: Origin;
}

export interface DenyFilter {
  readonly type: 'deny';
  /** Stable reason logged for every connection this chain closes, e.g. "sni_not_routed". */
  readonly reason: string;
  readonly detail: string;
}

// ---------------------------------------------------------------------------------------------
// HTTP routes

export interface RouteConfig {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
}

export interface VirtualHost {
  readonly name: string;
  /** Exact names, `*.suffix` wildcards or `*`; `host:port` forms are matched too, as Envoy does. */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly origin?: Origin;
  readonly typedPerFilterConfig?: PerFilterConfig;
}

export interface StringMatcher {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface RouteMatch {
  /** Path matchers (at most one). Absent = any path. */
  readonly path?: StringMatcher;
  readonly ignoreCase?: boolean;
  readonly method?: StringMatcher;
  readonly authority?: StringMatcher;
  readonly scheme?: StringMatcher;
  /** Lower-cased header names. */
  readonly headers?: readonly { readonly name: string; readonly match: StringMatcher; readonly invert?: boolean }[];
  readonly queryParams?: readonly { readonly name: string; readonly match: StringMatcher }[];
  /** Listener port the request arrived on. */
  readonly port?: number;
  readonly sourceNamespace?: string;
  readonly sourceLabels?: Readonly<Record<string, string>>;
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly perTryTimeoutMs?: number;
  readonly retryOn: readonly string[];
}

export interface HeaderMutations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export type RouteAction =
  | {
      readonly type: 'forward';
      readonly clusters: readonly WeightedCluster[];
      readonly hostRewrite?: string;
      readonly pathRewrite?: { readonly prefix?: string; readonly full?: string };
      readonly timeoutMs?: number;
      readonly retries?: RetryPolicy;
      readonly requestHeaders?: HeaderMutations;
      readonly responseHeaders?: HeaderMutations;
      readonly mirror?: { readonly cluster: string; readonly percent: number };
      readonly fault?: {
        readonly delay?: { readonly ms: number; readonly percent: number };
        /** `grpcStatus`: answered to gRPC clients as that gRPC status (HTTP 200), to others as `status`. */
        readonly abort?: { readonly status: number; readonly percent: number; readonly grpcStatus?: number };
      };
    }
  | {
      readonly type: 'direct';
      readonly status: number;
      readonly body: string;
      /** Envoy-style response flag and a stable reason for the access log (e.g. BLOCKED, registry_only). */
      readonly flag?: string;
      readonly reason?: string;
    }
  | { readonly type: 'redirect'; readonly status: number; readonly scheme?: string; readonly authority?: string; readonly path?: string; readonly port?: number };

/**
 * Local rate limit of a route (VirtualService annotation `tollgate.io/local-rate-limit`): Envoy's
 * local_ratelimit token bucket. The bucket itself lives in the data plane (keyed by route name),
 * not here.
 */
export interface LocalRateLimit {
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  readonly maxTokens: number;
}

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  readonly origin?: Origin;
  /** E.g. `local_ratelimit`: a LocalRateLimit (over the limit -> 429 RL rate_limited). */
  readonly typedPerFilterConfig?: PerFilterConfig;
}

// ---------------------------------------------------------------------------------------------
// Clusters and endpoints

export type ClusterType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';

export interface UpstreamTls {
  /** ISTIO_MUTUAL: mesh mTLS with this proxy's workload certificate; the server must prove a SPIFFE ID (subjectAltNames when set). */
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  /**
   * Auto mTLS (no DestinationRule TLS; every workload behind the service runs a sidecar and its port
   * is not DISABLE): mesh mTLS when this proxy has a workload certificate, plaintext when it has none.
   */
  readonly auto?: true;
  readonly sni?: string;
  readonly caCertificates?: string; // file path
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly credentialName?: string; // "namespace/name" of a Secret resolved by the data plane
  readonly subjectAltNames?: readonly string[];
  readonly insecureSkipVerify?: boolean;
}

/** Exactly one source is set (Istio's oneof). */
export interface ConsistentHashPolicy {
  readonly header?: string; // lower-cased header name (httpHeaderName)
  readonly cookie?: { readonly name: string; readonly path?: string; readonly ttlMs?: number };
  readonly sourceIp?: true;
  readonly queryParameter?: string;
}

export interface ConnectionPoolPolicy {
  /** tcp.maxConnections: concurrent upstream connections (HTTP/1.1: requests in flight) to the cluster. */
  readonly maxConnections?: number;
  /** http.http1MaxPendingRequests: requests that may wait for a connection slot; beyond -> 503 UO. */
  readonly maxPendingRequests?: number;
  /** http.http2MaxRequests: requests in flight to the cluster over HTTP/2 (streams across its connections). */
  readonly maxRequests?: number;
  /** http.maxRequestsPerConnection: an upstream connection is closed after this many requests. */
  readonly maxRequestsPerConnection?: number;
  /** http.maxRetries: retries in flight across the cluster at once. */
  readonly maxRetries?: number;
  /** http.idleTimeout: idle pooled upstream connections are closed after this. */
  readonly idleTimeoutMs?: number;
}

export interface OutlierDetectionPolicy {
  /** Consecutive 5xx (incl. connect failures / resets, which count as 503) before ejection; 0 = off. */
  readonly consecutive5xxErrors: number;
  /** Consecutive 502/503/504 (incl. connect failures) before ejection; 0 = off. */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
}

export interface Cluster {
  readonly name: string; // the one encoder lives in snapshot/names.ts
  readonly type: ClusterType;
  /** The registry host and port this cluster serves (for ORIGINAL_DST: the allowed host pattern). */
  readonly serviceHost: string;
  readonly port: number;
  readonly protocol: string; // HTTP, HTTPS, TLS, TCP, ...
  /**
   * Requests go upstream over HTTP/2 (streams multiplexed on pooled connections): the port is
   * declared HTTP2/GRPC/GRPC-WEB, or an HTTP port's DestinationRule says `h2UpgradePolicy: UPGRADE`.
   */
  readonly http2?: true;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH';
  /** DestinationRule loadBalancer.consistentHash: the request attribute hashed to pick an endpoint (overrides lbPolicy). */
  readonly consistentHash?: ConsistentHashPolicy;
  /** DestinationRule connectionPool (Envoy circuit breakers + pool settings); absent = unlimited. */
  readonly connectionPool?: ConnectionPoolPolicy;
  /** DestinationRule outlierDetection (passive health checking); absent = never eject. */
  readonly outlierDetection?: OutlierDetectionPolicy;
  readonly dnsLookupFamily?: 'V4_ONLY' | 'V6_ONLY' | 'AUTO';
  readonly tls?: UpstreamTls;
  /** Fixed source address for every upstream connection of this cluster (destination-level). */
  readonly sourceAddress?: string;
  /**
   * Source address pool (`tollgate.io/source-address-pool`): the addresses this replica may use, in
   * pool order; the first one assigned on this host is bound. Empty: fail closed (no placement).
   */
  readonly sourceAddressPool?: readonly string[];
  /** Endpoint addresses were written explicitly in config (ServiceEntry endpoints/addresses, Service
   *  endpoints), so the SSRF guard does not apply to them. DNS/ORIGINAL_DST answers are always checked. */
  readonly explicitAddresses: boolean;
  /** CIDRs the registry declares for this service (ServiceEntry `addresses`): destinations inside
   *  them are allowed even where the SSRF guard would deny the class. */
  readonly allowedAddresses?: readonly string[];
  /**
   * ServiceEntry `tollgate.io/allow-private-addresses`: private/CGNAT ranges this cluster's DNS
   * answers may fall in. Unlike allowedAddresses, only addresses of class private or cgnat pass.
   */
  readonly allowPrivateAddresses?: readonly string[];
  /**
   * The destination is outside the mesh (ServiceEntry `location: MESH_EXTERNAL`, the default; a
   * passthrough to whatever the client named): requests to it carry no X-Forwarded-For.
   */
  readonly meshExternal?: true;
  readonly origin?: Origin;
  /** Why this cluster exists, for trace/config-dump (e.g. "ServiceEntry external-svc host edition.cnn.com"). */
  readonly description?: string;
}

export interface Endpoint {
  /** IP address, or a DNS name for STRICT_DNS/LOGICAL_DNS clusters. */
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface EndpointSet {
  readonly clusterName: string;
  readonly endpoints: readonly Endpoint[];
}
