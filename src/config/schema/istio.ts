/** Schemas for Istio's networking.istio.io and security.istio.io kinds (fields as in Istio's API reference). */
import { normalizeHostPattern } from '../../net/hostname.js';
import { grpcStatusCode } from '../../shared/grpc-status.js';
import { arr, bool, cidr, duration, int, ipOrCidr, map, num, obj, oneOf, openObj, port, str, stringMap, any, type Schema } from './dsl.js';

/**
 * `*x` (a wildcard that is not a whole label): Istio accepts it and matches hosts ending in `x`.
 * Tollgate matches only `*` and `*.suffix`; analyze says so (TG_HOST_PARTIAL_WILDCARD) and the
 * host is left out of routing, rather than the whole object being refused.
 */
export function isPartialWildcard(s: string): boolean {
  return /^\*[^.*][^*]*$/.test(s);
}

/** A host or host pattern as Istio takes it: exact, `*.suffix` or `*` (short names allowed). */
export const hostPattern = str((s) => {
  if (isPartialWildcard(s)) return undefined;
  const r = normalizeHostPattern(s);
  return r.ok ? undefined : `is not a valid host: ${r.error}`;
});
/** Gateway server hosts may be namespace-qualified: `ns/host`, `./host`, `*\/host`. */
const serverHost = str((s) => {
  const slash = s.indexOf('/');
  const r = normalizeHostPattern(slash >= 0 ? s.slice(slash + 1) : s);
  return r.ok ? undefined : `is not a valid host: ${r.error}`;
});

// ServiceEntry/Gateway port protocols, as Istio's reference lists them.
export const PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TLS', 'TCP', 'MONGO'] as const;

const stringMatch = obj({ exact: str(), prefix: str(), regex: str(checkRegex) });
const portSelector = obj({ number: port });
const destination = obj({ host: hostPattern, subset: str(), port: portSelector }, ['host']);
const percent = obj({ value: num });
const headerOps = obj({ set: stringMap, add: stringMap, remove: arr(str()) });
const headers = obj({ request: headerOps, response: headerOps });

function checkRegex(s: string): string | undefined {
  try {
    new RegExp(s);
    return undefined;
  } catch {
    return 'is not a valid regular expression';
  }
}

/** Istio parses port protocols case-insensitively, and an empty one means "not set" (TCP, or sniffed). */
const portProtocol = str((s) => (s === '' || (PORT_PROTOCOLS as readonly string[]).includes(s.toUpperCase()) ? undefined : `is not one of ${PORT_PROTOCOLS.join(', ')}`));
const servicePort = obj({ number: port, protocol: portProtocol, name: str(), targetPort: port }, ['number']);

const workloadEntrySpec = obj({
  address: str(),
  ports: map(port),
  labels: stringMap,
  network: str(),
  locality: str(),
  weight: int(0),
  serviceAccount: str(),
});

export const serviceEntrySpec = obj(
  {
    hosts: arr(hostPattern, 1),
    addresses: arr(ipOrCidr),
    ports: arr(servicePort),
    location: oneOf('MESH_EXTERNAL', 'MESH_INTERNAL'),
    resolution: oneOf('NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'),
    endpoints: arr(workloadEntrySpec),
    workloadSelector: obj({ labels: stringMap }),
    exportTo: arr(str()),
    subjectAltNames: arr(str()),
  },
  ['hosts'],
);

const serverTls = obj({
  httpsRedirect: bool,
  mode: oneOf('PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'),
  serverCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  caCrl: str(),
  credentialName: str(),
  credentialNames: arr(str()),
  subjectAltNames: arr(str()),
  verifyCertificateSpki: arr(str()),
  verifyCertificateHash: arr(str()),
  minProtocolVersion: oneOf('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'),
  maxProtocolVersion: oneOf('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'),
  cipherSuites: arr(str()),
});

export const gatewaySpec = obj(
  {
    selector: stringMap,
    servers: arr(
      obj(
        {
          port: obj({ number: port, protocol: oneOf(...PORT_PROTOCOLS), name: str(), targetPort: port }, ['number', 'protocol']),
          bind: str(),
          hosts: arr(serverHost, 1),
          tls: serverTls,
          name: str(),
          defaultEndpoint: str(),
        },
        ['port', 'hosts'],
      ),
      1,
    ),
  },
  ['servers'],
);

const httpMatch = obj({
  name: str(),
  uri: stringMatch,
  scheme: stringMatch,
  method: stringMatch,
  authority: stringMatch,
  headers: map(stringMatch),
  port,
  sourceLabels: stringMap,
  gateways: arr(str()),
  queryParams: map(stringMatch),
  ignoreUriCase: bool,
  withoutHeaders: map(stringMatch),
  sourceNamespace: str(),
  statPrefix: str(),
});

const httpRoute = obj({
  name: str(),
  match: arr(httpMatch),
  route: arr(obj({ destination, weight: int(0, 100), headers }, ['destination'])),
  redirect: obj({ uri: str(), authority: str(), port, derivePort: oneOf('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'), scheme: str(), redirectCode: int(300, 399) }),
  directResponse: obj({ status: int(200, 599), body: obj({ string: str(), bytes: str() }) }, ['status']),
  delegate: obj({ name: str(), namespace: str() }),
  rewrite: obj({ uri: str(), authority: str(), uriRegexRewrite: obj({ match: str(checkRegex), rewrite: str() }) }),
  timeout: duration,
  retries: obj({ attempts: int(0), perTryTimeout: duration, retryOn: str(), retryRemoteLocalities: bool, retryIgnorePreviousHosts: bool, backoff: duration }),
  fault: obj({
    delay: obj({ fixedDelay: duration, exponentialDelay: duration, percentage: percent, percent: int(0, 100) }),
    abort: obj({ httpStatus: int(200, 599), grpcStatus: str((v) => (grpcStatusCode(v) === undefined ? 'is not a gRPC status (a name such as UNAVAILABLE, or 0-16)' : undefined)), http2Error: str(), percentage: percent }),
  }),
  mirror: destination,
  mirrors: arr(obj({ destination, percentage: percent }, ['destination'])),
  mirrorPercentage: percent,
  mirrorPercent: int(0, 100),
  corsPolicy: openObj({}),
  headers,
});

const l4Dest = arr(obj({ destination, weight: int(0, 100) }, ['destination']));
const tlsRoute = obj(
  {
    match: arr(
      obj({ sniHosts: arr(hostPattern, 1), destinationSubnets: arr(ipOrCidr), port, sourceLabels: stringMap, gateways: arr(str()), sourceNamespace: str() }, ['sniHosts']),
      1,
    ),
    route: l4Dest,
  },
  ['match'],
);
const tcpRoute = obj({
  match: arr(obj({ destinationSubnets: arr(ipOrCidr), port, sourceSubnet: str(), sourceLabels: stringMap, gateways: arr(str()), sourceNamespace: str() })),
  route: l4Dest,
});

export const virtualServiceSpec = obj({
  hosts: arr(hostPattern),
  gateways: arr(str()),
  http: arr(httpRoute),
  tls: arr(tlsRoute),
  tcp: arr(tcpRoute),
  exportTo: arr(str()),
});

const clientTls = obj({
  mode: oneOf('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'),
  clientCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  caCrl: str(),
  credentialName: str(),
  subjectAltNames: arr(str()),
  sni: str(),
  insecureSkipVerify: bool,
});
const loadBalancer = obj({
  simple: oneOf('UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'),
  consistentHash: obj({
    httpHeaderName: str(),
    httpCookie: obj({ name: str(), path: str(), ttl: duration }, ['name']),
    useSourceIp: bool,
    httpQueryParameterName: str(),
    ringHash: obj({ minimumRingSize: int(0) }),
    maglev: obj({ tableSize: int(0) }),
    minimumRingSize: int(0),
  }),
  localityLbSetting: openObj({}),
  warmupDurationSecs: duration,
  warmup: openObj({}),
});
const connectionPool = obj({
  tcp: obj({ maxConnections: int(0), connectTimeout: duration, tcpKeepalive: openObj({}), maxConnectionDuration: duration, idleTimeout: duration }),
  http: obj({
    http1MaxPendingRequests: int(0),
    http2MaxRequests: int(0),
    maxRequestsPerConnection: int(0),
    maxRetries: int(0),
    idleTimeout: duration,
    h2UpgradePolicy: oneOf('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
    useClientProtocol: bool,
    maxConcurrentStreams: int(0),
  }),
});
const outlierDetection = obj({
  splitExternalLocalOriginErrors: bool,
  consecutiveLocalOriginFailures: int(0),
  consecutiveGatewayErrors: int(0),
  consecutive5xxErrors: int(0),
  consecutiveErrors: int(0),
  interval: duration,
  baseEjectionTime: duration,
  maxEjectionPercent: int(0, 100),
  minHealthPercent: int(0, 100),
});
const trafficPolicyBase = {
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
  tunnel: openObj({}),
  proxyProtocol: openObj({}),
};
const trafficPolicy = obj({
  ...trafficPolicyBase,
  portLevelSettings: arr(obj({ port: portSelector, loadBalancer, connectionPool, outlierDetection, tls: clientTls })),
});

export const destinationRuleSpec = obj(
  {
    host: hostPattern,
    trafficPolicy,
    subsets: arr(obj({ name: str(), labels: stringMap, trafficPolicy }, ['name'])),
    exportTo: arr(str()),
    workloadSelector: obj({ matchLabels: stringMap }),
  },
  ['host'],
);

export const sidecarSpec = obj({
  workloadSelector: obj({ labels: stringMap }),
  ingress: arr(openObj({ port: obj({ number: port, protocol: str(), name: str() }), bind: str(), captureMode: str(), defaultEndpoint: str() })),
  egress: arr(obj({ port: obj({ number: port, protocol: str(), name: str() }), bind: str(), captureMode: oneOf('DEFAULT', 'IPTABLES', 'NONE'), hosts: arr(str(), 1) }, ['hosts'])),
  outboundTrafficPolicy: obj({ mode: oneOf('REGISTRY_ONLY', 'ALLOW_ANY'), egressProxy: destination }),
  inboundConnectionPool: openObj({}),
});

export const workloadEntryKindSpec = workloadEntrySpec;

const mtlsMode = oneOf('UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT');
export const peerAuthenticationSpec = obj({
  selector: obj({ matchLabels: stringMap }),
  mtls: obj({ mode: mtlsMode }),
  portLevelMtls: map(obj({ mode: mtlsMode }), (k) => (/^\d+$/.test(k) && Number(k) >= 1 && Number(k) <= 65535 ? undefined : `"${k}" is not a port number`)),
});

export const authorizationPolicySpec = obj({
  selector: obj({ matchLabels: stringMap }),
  targetRef: openObj({}),
  targetRefs: arr(openObj({})),
  action: oneOf('ALLOW', 'DENY', 'AUDIT', 'CUSTOM'),
  provider: openObj({}),
  rules: arr(any),
});

export const ISTIO_SCHEMAS: Readonly<Record<string, Schema>> = {
  ServiceEntry: serviceEntrySpec,
  Gateway: gatewaySpec,
  VirtualService: virtualServiceSpec,
  DestinationRule: destinationRuleSpec,
  Sidecar: sidecarSpec,
  WorkloadEntry: workloadEntryKindSpec,
  PeerAuthentication: peerAuthenticationSpec,
  AuthorizationPolicy: authorizationPolicySpec,
};

export { cidr };
