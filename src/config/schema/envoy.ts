/**
 * The subset of Envoy's v3 bootstrap that Tollgate runs (enough for Envoy's quick-start config): `admin` and
 * `static_resources` with listeners that use the HTTP connection manager or tcp_proxy, and clusters
 * of type STATIC / STRICT_DNS / LOGICAL_DNS with optional upstream TLS.
 */
import { normalizeHostPattern } from '../../net/hostname.js';
import { any, arr, bool, duration, int, obj, oneOf, openObj, port, str, type Schema } from './dsl.js';

/** Envoy domains: Tollgate supports exact names, `*.suffix` and `*` (with an optional `:port`), not `*-x` or `x.*`. */
const domain = str((s) => {
  const host = s.replace(/:(\d+|\*)$/, '');
  const r = normalizeHostPattern(host);
  return r.ok ? undefined : `is not a supported domain (exact, *.suffix or *): ${r.error}`;
});

const socketAddress = obj({ socket_address: obj({ address: str(), port_value: port, protocol: oneOf('TCP', 'UDP') }, ['address']) }, ['socket_address']);
const typed = (fields: Record<string, Schema>): Schema => openObj({ '@type': str(), ...fields });

const stringMatcher = obj({ exact: str(), prefix: str(), suffix: str(), contains: str(), safe_regex: obj({ regex: str() }), ignore_case: bool });
const route = obj({
  name: str(),
  match: obj({ prefix: str(), path: str(), safe_regex: obj({ regex: str() }), headers: arr(openObj({ name: str(), string_match: stringMatcher, exact_match: str() })), case_sensitive: bool }),
  route: obj({
    cluster: str(),
    weighted_clusters: obj({ clusters: arr(obj({ name: str(), weight: int(0) }, ['name'])), total_weight: int(0) }),
    host_rewrite_literal: str(),
    auto_host_rewrite: bool,
    prefix_rewrite: str(),
    timeout: duration,
    retry_policy: openObj({ retry_on: str(), num_retries: int(0), per_try_timeout: duration }),
  }),
  direct_response: obj({ status: int(100, 599), body: obj({ inline_string: str() }) }),
  redirect: openObj({}),
});
const httpConnectionManager = typed({
  stat_prefix: str(),
  codec_type: str(),
  access_log: arr(openObj({ name: str(), typed_config: any })),
  http_filters: arr(openObj({ name: str(), typed_config: any })),
  route_config: obj({ name: str(), virtual_hosts: arr(obj({ name: str(), domains: arr(domain, 1), routes: arr(route) }, ['name', 'domains'])) }),
});

const listener = obj(
  {
    name: str(),
    address: socketAddress,
    filter_chains: arr(
      obj({
        filter_chain_match: openObj({ server_names: arr(str()), destination_port: port, transport_protocol: str(), application_protocols: arr(str()) }),
        filters: arr(obj({ name: str(), typed_config: any }, ['name'])),
        transport_socket: openObj({}),
        name: str(),
      }),
    ),
    listener_filters: arr(openObj({ name: str() })),
  },
  ['name', 'address'],
);

const cluster = obj(
  {
    name: str(),
    type: oneOf('STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'),
    dns_lookup_family: oneOf('AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'),
    connect_timeout: duration,
    lb_policy: oneOf('ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED'),
    load_assignment: obj({
      cluster_name: str(),
      endpoints: arr(obj({ lb_endpoints: arr(openObj({ endpoint: obj({ address: socketAddress, hostname: str() }), load_balancing_weight: int(1) })), locality: openObj({}) })),
    }),
    transport_socket: obj({ name: str(), typed_config: typed({ sni: str(), common_tls_context: openObj({}) }) }),
    upstream_bind_config: obj({ source_address: obj({ address: str(), port_value: int(0, 65535) }) }),
    dns_refresh_rate: duration,
    respect_dns_ttl: bool,
  },
  ['name'],
);

export const envoyBootstrap = obj({
  admin: obj({ address: socketAddress, access_log_path: str(), access_log: arr(any) }),
  static_resources: obj({ listeners: arr(listener), clusters: arr(cluster) }),
  node: openObj({}),
  layered_runtime: openObj({}),
});

export const httpConnectionManagerSchema = httpConnectionManager;
