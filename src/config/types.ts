/**
 * Trusted, typed views of validated resources. Only config/ reads untrusted input; after
 * `decodeResources` everything downstream uses these types (readonly).
 */
export type StringMap = Readonly<Record<string, string>>;

export interface StringMatch { readonly exact?: string; readonly prefix?: string; readonly regex?: string }
export interface PortSelector { readonly number?: number }
export interface Destination { readonly host: string; readonly subset?: string; readonly port?: PortSelector }
export interface Percent { readonly value?: number }
export interface HeaderOps { readonly set?: StringMap; readonly add?: StringMap; readonly remove?: readonly string[] }
export interface Headers { readonly request?: HeaderOps; readonly response?: HeaderOps }

export interface ServicePort { readonly number: number; readonly protocol?: string; readonly name?: string; readonly targetPort?: number }
export interface WorkloadEntrySpec {
  readonly address?: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: StringMap;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
}
export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly addresses?: readonly string[];
  readonly ports?: readonly ServicePort[];
  readonly location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  readonly resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  readonly endpoints?: readonly WorkloadEntrySpec[];
  readonly workloadSelector?: { readonly labels?: StringMap };
  readonly exportTo?: readonly string[];
  readonly subjectAltNames?: readonly string[];
}

export interface ServerTls {
  readonly mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  readonly httpsRedirect?: boolean;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly credentialNames?: readonly string[];
  readonly subjectAltNames?: readonly string[];
  readonly caCrl?: string;
  readonly verifyCertificateSpki?: readonly string[];
  readonly verifyCertificateHash?: readonly string[];
  readonly minProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  readonly maxProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  readonly cipherSuites?: readonly string[];
}
export interface GatewayServer {
  readonly port: { readonly number: number; readonly protocol: string; readonly name?: string; readonly targetPort?: number };
  readonly bind?: string;
  readonly hosts: readonly string[];
  readonly tls?: ServerTls;
  readonly name?: string;
}
export interface GatewaySpec { readonly selector?: StringMap; readonly servers: readonly GatewayServer[] }

export interface HttpMatch {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  readonly headers?: Readonly<Record<string, StringMatch>>;
  readonly port?: number;
  readonly sourceLabels?: StringMap;
  readonly gateways?: readonly string[];
  readonly queryParams?: Readonly<Record<string, StringMatch>>;
  readonly ignoreUriCase?: boolean;
  readonly withoutHeaders?: Readonly<Record<string, StringMatch>>;
  readonly sourceNamespace?: string;
}
export interface RouteDestination { readonly destination: Destination; readonly weight?: number; readonly headers?: Headers }
export interface HttpRoute {
  readonly name?: string;
  readonly match?: readonly HttpMatch[];
  readonly route?: readonly RouteDestination[];
  readonly redirect?: { readonly uri?: string; readonly authority?: string; readonly port?: number; readonly scheme?: string; readonly redirectCode?: number };
  readonly directResponse?: { readonly status: number; readonly body?: { readonly string?: string; readonly bytes?: string } };
  readonly rewrite?: { readonly uri?: string; readonly authority?: string };
  readonly timeout?: string;
  readonly retries?: { readonly attempts?: number; readonly perTryTimeout?: string; readonly retryOn?: string };
  readonly fault?: {
    readonly delay?: { readonly fixedDelay?: string; readonly percentage?: Percent; readonly percent?: number };
    readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: Percent };
  };
  readonly mirror?: Destination;
  readonly mirrors?: readonly { readonly destination: Destination }[];
  readonly mirrorPercentage?: Percent;
  readonly headers?: Headers;
}
export interface L4Match {
  readonly sniHosts?: readonly string[];
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: StringMap;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}
export interface L4Route { readonly match?: readonly L4Match[]; readonly route?: readonly RouteDestination[] }
export interface VirtualServiceSpec {
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly http?: readonly HttpRoute[];
  readonly tls?: readonly L4Route[];
  readonly tcp?: readonly L4Route[];
  readonly exportTo?: readonly string[];
}

export interface ClientTls {
  readonly mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
}
export interface TrafficPolicy {
  readonly loadBalancer?: { readonly simple?: string; readonly consistentHash?: Readonly<Record<string, unknown>> };
  readonly connectionPool?: {
    readonly tcp?: { readonly maxConnections?: number; readonly connectTimeout?: string; readonly idleTimeout?: string };
    readonly http?: {
      readonly http1MaxPendingRequests?: number;
      readonly http2MaxRequests?: number;
      readonly maxRequestsPerConnection?: number;
      readonly idleTimeout?: string;
      readonly maxRetries?: number;
      readonly h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    };
  };
  readonly outlierDetection?: Readonly<Record<string, unknown>>;
  readonly tls?: ClientTls;
  readonly portLevelSettings?: readonly (Omit<TrafficPolicy, 'portLevelSettings'> & { readonly port?: PortSelector })[];
}
export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly { readonly name: string; readonly labels?: StringMap; readonly trafficPolicy?: TrafficPolicy }[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: StringMap };
}
export interface SidecarSpec {
  readonly workloadSelector?: { readonly labels?: StringMap };
  readonly egress?: readonly { readonly port?: { readonly number?: number; readonly protocol?: string }; readonly bind?: string; readonly hosts: readonly string[] }[];
  readonly outboundTrafficPolicy?: { readonly mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY' };
}
export interface PeerAuthenticationSpec {
  readonly selector?: { readonly matchLabels?: StringMap };
  readonly mtls?: { readonly mode?: string };
  readonly portLevelMtls?: Readonly<Record<string, { readonly mode?: string }>>;
}

export interface LabelSelector {
  readonly matchLabels?: StringMap;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; readonly values?: readonly string[] }[];
}
export interface EnvVar { readonly name: string; readonly value?: string }
export interface Container { readonly name: string; readonly image?: string; readonly env?: readonly EnvVar[]; readonly ports?: readonly { readonly containerPort?: number; readonly name?: string }[] }
export interface PodSpec {
  readonly containers?: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly hostAliases?: readonly { readonly ip: string; readonly hostnames?: readonly string[] }[];
  readonly nodeName?: string;
}
export interface PodStatus { readonly podIP?: string; readonly podIPs?: readonly { readonly ip: string }[]; readonly hostIP?: string }
export interface DeploymentSpec {
  readonly replicas?: number;
  readonly selector: LabelSelector;
  readonly template: { readonly metadata?: { readonly labels?: StringMap; readonly annotations?: StringMap }; readonly spec?: PodSpec };
}
export interface ServiceSpecPort { readonly name?: string; readonly port: number; readonly targetPort?: number | string; readonly protocol?: string; readonly nodePort?: number; readonly appProtocol?: string }
export interface ServiceSpec {
  readonly type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  readonly ports?: readonly ServiceSpecPort[];
  readonly selector?: StringMap;
  readonly clusterIP?: string;
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly externalName?: string;
}
export interface EgressIpSpec { readonly egressIPs: readonly string[]; readonly namespaceSelector: LabelSelector; readonly podSelector?: LabelSelector }
/** OpenShift SDN HostSubnet (top-level fields, read from `Resource.body`). */
export interface HostSubnetBody { readonly host?: string; readonly hostIP?: string; readonly subnet?: string; readonly egressIPs?: readonly string[]; readonly egressCIDRs?: readonly string[] }
/** OpenShift SDN NetNamespace: `netname` is the namespace (project) name. */
export interface NetNamespaceBody { readonly netname?: string; readonly netid?: number; readonly egressIPs?: readonly string[] }
