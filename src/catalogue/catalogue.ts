/**
 * The one table of what Tollgate can tell an operator went wrong: Envoy response flags, the stable
 * `tollgate_reason` of refused or failed connections and requests, the analyzer's codes and the
 * errors the CLI / runtime raise. Each entry has a one-line meaning and a fix hint. docs/errors.md
 * is generated from it (`node scripts/gen-errors-doc.mjs`; a test fails when it is out of date), and
 * a test fails when the code uses a reason or an analyzer code this table lacks.
 *
 * Adding an entry: one line in the right list. Keep `meaning` to what happened, `fix` to what to do.
 */

export type Severity = 'error' | 'warning' | 'info';

export interface FlagEntry {
  readonly flag: string;
  readonly meaning: string;
  readonly fix: string;
}

/** Where a reason is produced (the section of docs/errors.md it is listed in). */
export type ReasonArea = 'listener' | 'upstream' | 'tunnel' | 'connect' | 'http' | 'explicit-proxy-http' | 'traffic-policy' | 'rate-limit-mirror' | 'authorization';

export interface ReasonEntry {
  readonly reason: string;
  /** Response flag(s) logged with it. */
  readonly flag: string;
  /** HTTP status of the local reply ('' for L4 / no reply). */
  readonly status: string;
  readonly area: ReasonArea;
  readonly meaning: string;
  readonly fix: string;
}

export interface CodeEntry {
  readonly code: string;
  readonly severity: Severity;
  readonly meaning: string;
  readonly fix: string;
}

export const RESPONSE_FLAGS: readonly FlagEntry[] = [
  { flag: 'NR', meaning: 'no route: no filter chain for the connection (e.g. SNI not routed) or no virtual host / route (404)', fix: 'add a route (VirtualService / Gateway server) for the host, port and SNI; `tollgate trace` shows which step missed' },
  { flag: 'NC', meaning: 'no cluster: the route\'s cluster is not in the snapshot (503)', fix: 'declare the destination host/port/subset (ServiceEntry, DestinationRule); `tollgate analyze` reports it as TG_DEST_*' },
  { flag: 'UH', meaning: 'no healthy upstream: the cluster has no usable endpoint (503)', fix: 'give the ServiceEntry endpoints or a resolvable host; check subset labels and outlier ejections' },
  { flag: 'UF', meaning: 'upstream connection failure: TCP/TLS connect failed or the source address is missing (503)', fix: 'check the upstream is reachable from the proxy, its TLS settings and the source address' },
  { flag: 'UC', meaning: 'upstream connection termination: the upstream reset or closed the connection', fix: 'check the upstream\'s logs and keep-alive timeout; retryOn reset retries it' },
  { flag: 'UO', meaning: 'upstream overflow: the cluster\'s connectionPool limits are full (503)', fix: 'raise DestinationRule connectionPool limits or add capacity' },
  { flag: 'UT', meaning: 'upstream request timeout: no (complete) response within the route or per-try timeout (504)', fix: 'raise the VirtualService timeout / retries.perTryTimeout, or fix the slow upstream' },
  { flag: 'UPE', meaning: 'upstream protocol error: the upstream\'s response is not valid HTTP/1.1 (502)', fix: 'fix the upstream (the detail names the parse error); it is never forwarded' },
  { flag: 'URX', meaning: 'the request was retried and the retry limit was reached', fix: 'see the flag before it for why each try failed' },
  { flag: 'DC', meaning: 'downstream connection termination: the client closed or reset first', fix: 'usually the client gave up; compare its timeout with the upstream\'s response time' },
  { flag: 'DPE', meaning: 'downstream protocol error: the client sent something the proxy refuses (400-class, or a TLS inspector failure)', fix: 'fix the client; the reason and details name the rule' },
  { flag: 'DT', meaning: 'downstream request timeout: no complete request head in time (408)', fix: 'the client is slow or silent; raise the header timeout only if that is expected' },
  { flag: 'DF', meaning: 'DNS resolution failed for a DNS / ORIGINAL_DST cluster', fix: 'check the name, the DNS server (--dns-server) and that it answers within the DNS timeout' },
  { flag: 'SI', meaning: 'stream idle timeout: no byte either way while a request was in flight', fix: 'find the side that stopped sending; long polls need a longer stream idle timeout' },
  { flag: 'FI', meaning: 'fault injected: VirtualService fault.abort answered', fix: 'expected while the fault is configured; remove `fault` to stop it' },
  { flag: 'DI', meaning: 'delay injected: VirtualService fault.delay held the request', fix: 'expected while the fault is configured; remove `fault` to stop it' },
  { flag: 'RL', meaning: 'rate limited: the route\'s local token bucket was empty (429)', fix: 'slow the client down or raise tollgate.io/local-rate-limit' },
  { flag: 'OM', meaning: 'overload manager: a listener connection limit or a draining listener refused the connection', fix: 'raise --max-connections or add replicas' },
  { flag: 'BLOCKED', meaning: 'Tollgate: a policy refused the destination (not in the registry under REGISTRY_ONLY: 502 for HTTP, connection closed for L4; or the SSRF guard, an ACL, self-connect)', fix: 'declare the destination in a ServiceEntry (or the ACL / --allow-cidr) if it should be reachable' },
  { flag: 'NL', meaning: 'Tollgate (trace only): no listener on that port; a real client sees the connection refused or reset', fix: 'add a Gateway server / ServiceEntry port for it' },
];

export const REASONS: readonly ReasonEntry[] = [
  // ---------------------------------------------------------------- listener
  { reason: 'sni_not_routed', flag: 'NR', status: '', area: 'listener', meaning: 'the ClientHello\'s SNI matches no TLS route of the listener', fix: 'add a tls route (VirtualService `tls` with sniHosts) for the name' },
  { reason: 'sni_missing', flag: 'NR', status: '', area: 'listener', meaning: 'TLS without SNI on a listener that routes by SNI', fix: 'make the client send SNI (a host name, not an IP)' },
  { reason: 'no_tcp_route', flag: 'NR', status: '', area: 'listener', meaning: 'a Gateway TCP server without a route', fix: 'add a VirtualService `tcp` route for the Gateway server' },
  { reason: 'router_no_rule', flag: 'NR', status: '', area: 'listener', meaning: 'an egress-router Service port with no rule and no fallback', fix: 'add an EGRESS_DESTINATION rule for the port (or a fallback)' },
  { reason: 'registry_only', flag: 'BLOCKED', status: '502', area: 'listener', meaning: 'REGISTRY_ONLY: the destination is not in the registry (the sidecar\'s deny chain, or its HTTP block_all route: the same flag on both)', fix: 'declare the host in a ServiceEntry, or use ALLOW_ANY deliberately' },
  { reason: 'no_filter_chain', flag: 'NR', status: '', area: 'listener', meaning: 'no chain matches and the listener has no default chain', fix: 'add a route for the connection\'s SNI / destination' },
  { reason: 'route_removed', flag: 'NR', status: '', area: 'listener', meaning: 'an open tunnel whose route a new snapshot removed was closed', fix: 'expected after a route is deleted; keep the route if the traffic should continue' },
  { reason: 'tls_not_tls', flag: 'DPE / NR', status: '', area: 'listener', meaning: 'the first bytes are not a TLS handshake on a listener whose chains need TLS', fix: 'the client speaks plaintext to a TLS port: fix its scheme or port' },
  { reason: 'tls_not_client_hello', flag: 'DPE', status: '', area: 'listener', meaning: 'TLS inspector: the first handshake message is not a ClientHello (TG_TLS_NOT_CLIENT_HELLO)', fix: 'fix the client' },
  { reason: 'tls_malformed', flag: 'DPE', status: '', area: 'listener', meaning: 'TLS inspector: lengths in the ClientHello are inconsistent (TG_TLS_MALFORMED)', fix: 'fix the client (or what is in front of it)' },
  { reason: 'tls_bad_sni', flag: 'DPE', status: '', area: 'listener', meaning: 'TLS inspector: the SNI is not a valid host name (TG_TLS_BAD_SNI)', fix: 'fix the client\'s server name' },
  { reason: 'tls_hello_too_large', flag: 'DPE', status: '', area: 'listener', meaning: 'ClientHello larger than 16 KiB (TG_TLS_HELLO_TOO_LARGE)', fix: 'fix the client; such hellos are refused' },
  { reason: 'tls_hello_timeout', flag: 'DPE', status: '', area: 'listener', meaning: 'no complete ClientHello within --tls-hello-timeout (15 s)', fix: 'the client is silent or slow; raise --tls-hello-timeout only if that is expected' },
  { reason: 'downstream_closed_before_hello', flag: 'DC', status: '', area: 'listener', meaning: 'the client closed before its ClientHello was complete', fix: 'usually a client or health check giving up' },
  { reason: 'listener_connection_limit', flag: 'OM', status: '', area: 'listener', meaning: 'more than --max-connections open connections on the listener', fix: 'raise --max-connections or add replicas' },
  { reason: 'process_connection_limit', flag: 'OM', status: '', area: 'listener', meaning: 'all listeners together hold as many connections as the open-file limit allows ((limit - 128) / 2; see docs/operations.md)', fix: 'raise the hard open-file limit (LimitNOFILE, container runtime) or add replicas' },
  { reason: 'listener_draining', flag: 'OM', status: '', area: 'listener', meaning: 'accepted while the listener was closing', fix: 'expected during shutdown or a listener removal' },
  { reason: 'tls_handshake_failed', flag: 'DPE', status: '', area: 'listener', meaning: 'a terminating Gateway server\'s TLS handshake failed or did not finish in time (protocol version or cipher refused, client closed, silent client)', fix: 'compare the client\'s TLS versions and ciphers with the Gateway server\'s min/maxProtocolVersion and cipherSuites' },
  { reason: 'tls_client_certificate_invalid', flag: 'DPE', status: '', area: 'listener', meaning: 'tls.mode MUTUAL: the client sent no certificate; MUTUAL or OPTIONAL_MUTUAL: its certificate does not lead to the configured CA (or expired)', fix: 'give the client a certificate from the CA in the Secret\'s ca.crt / `<name>-cacert` Secret / caCertificates' },
  { reason: 'tls_client_certificate_san_mismatch', flag: 'DPE', status: '', area: 'listener', meaning: 'the client certificate carries none of the Gateway server\'s tls.subjectAltNames', fix: 'issue the client certificate with one of those URI/DNS SANs, or list its SAN' },
  { reason: 'tls_credential_unavailable', flag: 'DPE', status: '', area: 'listener', meaning: 'a terminating chain with no TLS context (cannot happen with an applied snapshot: a certificate that cannot be loaded rejects the snapshot)', fix: 'check the certificate files / credentialName Secret the Gateway names' },
  { reason: 'http_engine_unavailable', flag: 'NR', status: '503', area: 'listener', meaning: 'the 503 stand-in for the HTTP engine (tests only)', fix: 'run the real HTTP engine' },
  // ---------------------------------------------------------------- upstream
  { reason: 'cluster_not_found', flag: 'NC', status: '503', area: 'upstream', meaning: 'the route\'s (picked weighted) cluster is not in the snapshot', fix: 'declare the destination host/port/subset; analyze reports TG_DEST_* / TG_SUBSET_*' },
  { reason: 'no_healthy_upstream', flag: 'UH', status: '503', area: 'upstream', meaning: 'the cluster has no endpoint / usable address, or outlier detection ejected every endpoint', fix: 'give the ServiceEntry endpoints, fix subset labels, or wait for ejections to end' },
  { reason: 'bad_endpoint_address', flag: 'UH', status: '503', area: 'upstream', meaning: 'an endpoint address is neither an IP nor resolvable', fix: 'fix the ServiceEntry endpoint address' },
  { reason: 'original_dst_no_host', flag: 'UH', status: '503', area: 'upstream', meaning: 'a resolution NONE cluster and the client named no host (no SNI / Host)', fix: 'the client must send SNI or Host' },
  { reason: 'original_dst_no_port', flag: 'UH', status: '503', area: 'upstream', meaning: 'a resolution NONE cluster without a destination port', fix: 'declare the port on the ServiceEntry' },
  { reason: 'original_dst_host_mismatch', flag: 'BLOCKED', status: '403', area: 'upstream', meaning: 'the requested host is not covered by the cluster\'s host pattern', fix: 'add the host to the ServiceEntry hosts' },
  { reason: 'dns_resolution_failed', flag: 'DF', status: '503 / 502', area: 'upstream', meaning: 'NXDOMAIN, SERVFAIL, no records, or no answer within the DNS timeout (2 s x 2 tries)', fix: 'check the name and --dns-server' },
  { reason: 'ssrf_denied', flag: 'BLOCKED', status: '403', area: 'upstream', meaning: 'the address is loopback/private/link-local/metadata/CGNAT/... and not allowed by --allow-cidr, ServiceEntry `addresses`, its `tollgate.io/allow-private-addresses` or an ACL entry; the detail says which would allow it', fix: 'a private/CGNAT answer for a ServiceEntry host: annotate the entry with tollgate.io/allow-private-addresses: "<range>"; other classes: the proxy\'s --allow-cidr' },
  { reason: 'self_connect', flag: 'BLOCKED', status: '403', area: 'upstream', meaning: 'the destination is one of this process\'s own listener/admin ports on a local address', fix: 'route to the real upstream, not the proxy itself' },
  { reason: 'source_address_unavailable', flag: 'UF', status: '503', area: 'upstream', meaning: 'the chosen source address is not assigned on this host: fail closed, no fallback (also reported when the snapshot is applied)', fix: 'assign the address to an interface, or fix the annotation / EgressIP / --source-address' },
  { reason: 'ephemeral_ports_exhausted', flag: 'UF', status: '503', area: 'upstream', meaning: 'no free local port for a new connection to that upstream (EADDRNOTAVAIL on connect, EADDRINUSE): the ephemeral port range (net.ipv4.ip_local_port_range) is in use, usually by TIME_WAIT left from connection churn', fix: 'let connections be reused (client keep-alive; DestinationRule connectionPool maxRequestsPerConnection unset), widen net.ipv4.ip_local_port_range, or spread over more source addresses / endpoints' },
  { reason: 'upstream_connect_refused', flag: 'UF', status: '503', area: 'upstream', meaning: 'TCP connect refused (ECONNREFUSED)', fix: 'the upstream is not listening on that port' },
  { reason: 'upstream_connect_timeout', flag: 'UF', status: '503', area: 'upstream', meaning: 'TCP connect timed out', fix: 'check routes and firewalls between the proxy and the upstream' },
  { reason: 'upstream_unreachable', flag: 'UF', status: '503', area: 'upstream', meaning: 'ENETUNREACH / EHOSTUNREACH', fix: 'check the proxy\'s routes to the upstream' },
  { reason: 'upstream_connect_reset', flag: 'UF', status: '503', area: 'upstream', meaning: 'the connect was reset (ECONNRESET)', fix: 'check the upstream and what is in between' },
  { reason: 'upstream_connect_failed', flag: 'UF', status: '503', area: 'upstream', meaning: 'TCP connect failed for another reason (the detail has the error)', fix: 'read response_code_details' },
  { reason: 'internal_error', flag: 'UF', status: '503', area: 'upstream', meaning: 'an unexpected error while choosing or dialing the upstream (a bug)', fix: 'report it with the access-log line' },
  // ---------------------------------------------------------------- tunnel
  { reason: 'upstream_reset', flag: 'UC', status: '', area: 'tunnel', meaning: 'the upstream reset an established tunnel (or upgraded connection); the downstream is reset too', fix: 'check the upstream' },
  { reason: 'downstream_reset', flag: 'DC', status: '', area: 'tunnel', meaning: 'the downstream reset an established tunnel; the upstream is reset too', fix: 'usually the client' },
  { reason: 'downstream_closed_before_upstream_connected', flag: 'DC', status: '', area: 'tunnel', meaning: 'the client left while the upstream connection was being made', fix: 'compare the client\'s timeout with the upstream connect time' },
  { reason: 'idle_timeout', flag: '-', status: '', area: 'tunnel', meaning: 'no bytes either way for the idle timeout (1 h; --tcp-idle-timeout)', fix: 'use keep-alives or raise the idle timeout' },
  { reason: 'drained', flag: '-', status: '', area: 'tunnel', meaning: 'closed by shutdown after the drain timeout', fix: 'expected during shutdown; raise --drain-timeout for long tunnels' },
  // ---------------------------------------------------------------- CONNECT
  { reason: 'connect_not_in_registry', flag: 'NR', status: '403', area: 'connect', meaning: 'no ServiceEntry (cluster) declares host:port', fix: 'declare host:port in a ServiceEntry' },
  { reason: 'connect_port_not_allowed', flag: 'BLOCKED', status: '403', area: 'connect', meaning: 'the port is not in --connect-ports (default 443) / the router\'s allowed ports', fix: 'add the port to --connect-ports if it should be tunneled' },
  { reason: 'acl_denied', flag: 'BLOCKED', status: '403', area: 'connect', meaning: 'egress router http-proxy list: a `!` entry matched', fix: 'expected; change EGRESS_HTTP_PROXY_DESTINATION to allow it' },
  { reason: 'acl_no_match', flag: 'BLOCKED', status: '403', area: 'connect', meaning: 'egress router http-proxy list: no entry matched', fix: 'add an entry to EGRESS_HTTP_PROXY_DESTINATION' },
  { reason: 'connect_sni_mismatch', flag: 'BLOCKED', status: '', area: 'connect', meaning: 'after 200, the ClientHello\'s SNI differs from the CONNECT host (possible domain fronting); tunnel closed', fix: 'the client must send the SNI of the host it CONNECTed to' },
  { reason: 'connect_not_tls', flag: 'BLOCKED', status: '', area: 'connect', meaning: 'non-TLS bytes in a tunnel to a TLS/HTTPS registry port', fix: 'the client must speak TLS through the tunnel' },
  { reason: 'connect_with_body', flag: 'DPE', status: '400', area: 'connect', meaning: 'CONNECT with Content-Length > 0 or Transfer-Encoding (TG_HTTP_CONNECT_BODY)', fix: 'fix the client' },
  { reason: 'connect_early_data', flag: 'DPE', status: '400', area: 'connect', meaning: 'bytes after the CONNECT head before the proxy answered', fix: 'the client must wait for 200 before sending' },
  { reason: 'connect_bad_authority', flag: 'DPE', status: '400', area: 'connect', meaning: 'the CONNECT target is not host:port', fix: 'fix the client' },
  { reason: 'http_bad_request', flag: 'DPE', status: '4xx', area: 'connect', meaning: 'the request head failed the strict parser (the TG_HTTP_* code is in the details)', fix: 'fix the client (docs/http-codec.md lists the codes)' },
  { reason: 'request_head_timeout', flag: 'DPE', status: '408', area: 'connect', meaning: 'no complete request head within 10 s', fix: 'the client is silent or slow' },
  { reason: 'downstream_closed_before_request', flag: 'DC', status: '', area: 'connect', meaning: 'the client closed before sending a request head', fix: 'usually a client or health check giving up' },
  { reason: 'explicit_proxy_http_unsupported', flag: '-', status: '501', area: 'connect', meaning: 'absolute-form request and no HTTP engine handles it (tests that run the listener without the engine)', fix: 'run the real HTTP engine' },
  { reason: 'would_deny_registry', flag: '-', status: 'the upstream\'s', area: 'connect', meaning: 'not a denial: report-only passed a destination outside the registry that enforcement would refuse (403 proxy_not_in_registry / connect_not_in_registry); counted in tollgate_would_deny_total, not tollgate_denied_total; a later failure replaces it', fix: 'declare the destination before enforcing, or expect it to be refused' },
  // ---------------------------------------------------------------- HTTP engine
  { reason: 'request_header_timeout', flag: 'DT', status: '408', area: 'http', meaning: 'no complete request head within the header timeout (10 s)', fix: 'the client is silent or slow' },
  { reason: 'drain_closed_connection', flag: 'OM', status: '', area: 'http', meaning: 'shutdown closed an idle keep-alive connection (FIN) and a request crossed it: the request was read and logged, nothing was answered or sent upstream; the client sees the connection closed before any byte of a response', fix: 'expected during shutdown (clients retry on a new connection); take the pod out of rotation before SIGTERM (preStop) to make it rare' },
  { reason: 'h2_request_not_forwardable', flag: 'DPE', status: '400/501', area: 'http', meaning: 'an HTTP/2 stream whose head cannot be forwarded: host disagrees with :authority, a pseudo-header is missing (400), or CONNECT (501)', fix: 'fix the client' },
  { reason: 'missing_host', flag: 'DPE', status: '400', area: 'http', meaning: 'HTTP/1.0 request without Host (nothing to route on)', fix: 'the client must send Host' },
  { reason: 'invalid_host', flag: 'DPE', status: '400', area: 'http', meaning: 'the authority does not normalize (bad label, numeric TLD, IDNA failure, ...)', fix: 'fix the client\'s Host / target' },
  { reason: 'encoded_slash_in_path', flag: 'DPE', status: '400', area: 'http', meaning: '%2F / %5C in the path (encoded slashes are rejected by default)', fix: 'the client must not encode slashes; routing and upstream would read the path differently' },
  { reason: 'connect_not_allowed', flag: 'NR', status: '405', area: 'http', meaning: 'CONNECT on an HTTP listener (CONNECT belongs to explicit-proxy listeners); the connection is closed after the answer, so bytes sent after the CONNECT are never read as a request', fix: 'send CONNECT to the explicit proxy listener' },
  { reason: 'route_not_found', flag: 'NR', status: '404', area: 'http', meaning: 'no virtual host for the normalized host, or no route matches', fix: 'add the host to a VirtualService bound to this Gateway; `tollgate trace` shows the miss' },
  { reason: 'fault_abort', flag: 'FI', status: 'the fault\'s', area: 'http', meaning: 'VirtualService fault.abort', fix: 'expected while the fault is configured' },
  { reason: 'upstream_tls_handshake_failed', flag: 'UF', status: '503', area: 'http', meaning: 'TLS origination failed (certificate not trusted, name mismatch, handshake error)', fix: 'check DestinationRule tls (caCertificates, sni, subjectAltNames) against the upstream\'s certificate' },
  { reason: 'upstream_tls_credential_unavailable', flag: 'UF', status: '503', area: 'http', meaning: 'the cluster\'s TLS key material cannot be used any more (a rotated file is unreadable); at apply it rejects the snapshot', fix: 'fix the files / Secret the DestinationRule names' },
  { reason: 'upstream_reset_before_response', flag: 'UC', status: '503', area: 'http', meaning: 'the upstream reset or closed before a response head (a reused idle connection is retried once)', fix: 'check the upstream; retryOn reset retries it' },
  { reason: 'upstream_protocol_error', flag: 'UPE', status: '502', area: 'http', meaning: 'the upstream response failed the strict parser; after the head went out the downstream is reset', fix: 'fix the upstream (the detail names the rule)' },
  { reason: 'upstream_reset_mid_response', flag: 'UC', status: '', area: 'http', meaning: 'the upstream reset in the middle of the body: the downstream is reset (never a clean, shorter body)', fix: 'check the upstream' },
  { reason: 'upstream_request_timeout', flag: 'UT', status: '504', area: 'http', meaning: 'no complete response within the route timeout (from the end of the request)', fix: 'raise the VirtualService timeout or fix the slow upstream' },
  { reason: 'upstream_per_try_timeout', flag: 'UT', status: '504', area: 'http', meaning: 'no response head within retries.perTryTimeout and no attempt left', fix: 'raise perTryTimeout / attempts or fix the slow upstream' },
  { reason: 'stream_idle_timeout', flag: 'SI', status: '408 / 504', area: 'http', meaning: 'no byte either way for 300 s while a request was in flight', fix: 'find the side that stopped sending' },
  { reason: 'downstream_closed', flag: 'DC', status: '', area: 'http', meaning: 'the client closed or reset before the response was complete; the upstream connection is destroyed', fix: 'usually the client gave up' },
  // ---------------------------------------------------------------- explicit proxy (plain HTTP)
  { reason: 'proxy_not_absolute_form', flag: 'DPE', status: '400', area: 'explicit-proxy-http', meaning: 'a request on an explicit-proxy listener that is neither CONNECT nor absolute-form', fix: 'configure the client to use the proxy (HTTP_PROXY), not to send to it directly' },
  { reason: 'proxy_not_in_registry', flag: 'NR', status: '403', area: 'explicit-proxy-http', meaning: 'registry mode: no ServiceEntry declares the target\'s host:port', fix: 'declare host:port in a ServiceEntry' },
  { reason: 'proxy_tls_not_originated', flag: 'BLOCKED', status: '403', area: 'explicit-proxy-http', meaning: 'an https:// target (or TLS registry port) and the cluster does not originate TLS', fix: 'use CONNECT, or add a DestinationRule with tls' },
  // ---------------------------------------------------------------- traffic policy
  { reason: 'upstream_overflow', flag: 'UO', status: '503', area: 'traffic-policy', meaning: 'the cluster\'s connectionPool limits are full (maxConnections in flight and http1MaxPendingRequests waiting)', fix: 'raise the DestinationRule connectionPool limits or add capacity' },
  // ---------------------------------------------------------------- rate limit, mirror
  { reason: 'rate_limited', flag: 'RL', status: '429', area: 'rate-limit-mirror', meaning: 'the route\'s token bucket (tollgate.io/local-rate-limit) is empty; x-ratelimit-* and retry-after tell when a token is back', fix: 'slow the client down or raise the limit' },
  // ---------------------------------------------------------------- authorization
  { reason: 'mtls_required', flag: 'NR', status: '', area: 'listener', meaning: 'a plaintext connection to a port whose PeerAuthentication is STRICT: closed before anything is dialed', fix: 'call it from a mesh workload (its sidecar originates mTLS), or set the port PERMISSIVE/DISABLE with portLevelMtls (docs/security.md)' },
  { reason: 'mtls_handshake_failed', flag: 'UF', status: '-', area: 'listener', meaning: 'the mesh mTLS handshake failed: no client certificate, or one the mesh roots do not verify; connection_termination_details has the TLS error', fix: 'the caller needs a workload certificate from the same mesh CA (docs/security.md)' },
  { reason: 'mtls_handshake_timeout', flag: 'UF', status: '-', area: 'listener', meaning: 'the mesh mTLS handshake did not finish within the TLS hello timeout', fix: 'check the caller; --tls-hello-timeout sets the limit' },
  { reason: 'mtls_no_workload_certificate', flag: 'UF', status: '-', area: 'listener', meaning: 'a client started mesh mTLS but this proxy has no workload certificate yet (or it cannot be loaded): refused, never served without authentication', fix: 'give the proxy its identity: --workload-cert-dir, or a control plane with a CA' },
  { reason: 'rbac_denied', flag: '-', status: '403', area: 'authorization', meaning: 'an AuthorizationPolicy denied the request (body `RBAC: access denied`) or the TCP connection (closed before dialing); response_code_details names it: rbac_access_denied_matched_policy[ns[NS]-policy[NAME]-rule[N]], or [none] when ALLOW policies apply and none matched', fix: 'tollgate trace shows the policy and rule; change the policy or the caller (docs/authorization.md)' },
  { reason: 'rbac_dry_run_denied', flag: '-', status: '', area: 'authorization', meaning: 'not a denial: a dry-run policy (istio.io/dry-run or tollgate.io/dry-run "true") would have denied this request; it passed', fix: 'remove the dry-run annotation to enforce, or fix the policy' },
];

/** Analyzer codes (`tollgate analyze`); IST codes are Istio's own analyzer codes where Tollgate reports the same finding. */
export const ANALYZER_CODES: readonly CodeEntry[] = [
  { code: 'TG_DEST_NOT_IN_REGISTRY', severity: 'error', meaning: 'a VirtualService destination host is in no ServiceEntry/Service: 503 NC', fix: 'add a ServiceEntry for the host' },
  { code: 'TG_DEST_PORT_NOT_DECLARED', severity: 'error', meaning: 'destination port not declared by the service', fix: 'add the port to the ServiceEntry / Service, or fix the route\'s port' },
  { code: 'TG_SUBSET_NO_DESTINATIONRULE', severity: 'error', meaning: 'a route names a subset and no DestinationRule defines subsets for the host: 503 NC', fix: 'add a DestinationRule with the subset' },
  { code: 'TG_SUBSET_NOT_FOUND', severity: 'error', meaning: 'a route names a subset the DestinationRule does not define: 503 NC', fix: 'add the subset or fix its name' },
  { code: 'TG_GATEWAY_NOT_FOUND', severity: 'error', meaning: 'a VirtualService names a Gateway that does not exist', fix: 'fix the gateways list or add the Gateway' },
  { code: 'TG_GATEWAY_NO_WORKLOAD', severity: 'warning', meaning: 'a Gateway selector matches no Pod/Deployment in the config', fix: 'fix the selector labels' },
  { code: 'TG_GATEWAY_HOST_NOT_ROUTED', severity: 'warning', meaning: 'a Gateway server host has no bound VirtualService route: 404 / SNI closed', fix: 'bind a VirtualService for the host to the Gateway' },
  { code: 'TG_GATEWAY_NO_SERVER', severity: 'error', meaning: 'a mesh route sends traffic to a gateway port on which no Gateway has a server: 503 / reset', fix: 'add the Gateway server for that port' },
  { code: 'TG_MESH_ROUTE_NOT_IN_REGISTRY', severity: 'warning', meaning: 'a mesh http/tls route for a host:port no ServiceEntry declares: the route never applies', fix: 'declare the host:port in a ServiceEntry' },
  { code: 'TG_HTTPS_BYPASSES_GATEWAY', severity: 'warning', meaning: 'HTTP to a host goes through the egress gateway, HTTPS to it does not', fix: 'route the tls/443 traffic through the gateway too' },
  { code: 'TG_GATEWAY_WORKLOAD_UNUSED', severity: 'info', meaning: 'a gateway workload (istio=*gateway) that no Gateway selects', fix: 'select it from a Gateway or remove it' },
  { code: 'TG_TCP_PORT_COLLISION', severity: 'error', meaning: 'TCP ServiceEntries share a port and one has no `addresses`', fix: 'give each TCP ServiceEntry on the port its `addresses`' },
  { code: 'TG_ROUTER_BAD_RULE', severity: 'error', meaning: 'an unparsable EGRESS_DESTINATION rule, at its line', fix: 'fix the rule (see docs/egress-router.md)' },
  { code: 'TG_ROUTER_BAD_MODE', severity: 'error', meaning: 'an unknown EGRESS_ROUTER_MODE', fix: 'use init, http-proxy or dns-proxy' },
  { code: 'TG_ROUTER_BAD_SOURCE', severity: 'error', meaning: 'EGRESS_SOURCE is not an IP (or IP/prefix)', fix: 'fix EGRESS_SOURCE' },
  { code: 'TG_ROUTER_BAD_GATEWAY', severity: 'error', meaning: 'EGRESS_GATEWAY is not an IP', fix: 'fix EGRESS_GATEWAY' },
  { code: 'TG_ROUTER_BAD_DATAPATH', severity: 'error', meaning: 'the tollgate.io/router-datapath annotation is not kernel or userspace', fix: 'use kernel or userspace' },
  { code: 'TG_ROUTER_GATEWAY_OFF_SUBNET', severity: 'error', meaning: 'EGRESS_GATEWAY outside the subnet of EGRESS_SOURCE: the default route cannot be installed', fix: 'use a gateway on EGRESS_SOURCE\'s subnet' },
  { code: 'TG_ROUTER_REPLICAS', severity: 'error', meaning: 'an egress router with replicas other than 1', fix: 'set replicas: 1' },
  { code: 'TG_ROUTER_NO_SOURCE', severity: 'error', meaning: 'an egress router without EGRESS_SOURCE', fix: 'set EGRESS_SOURCE' },
  { code: 'TG_ROUTER_UDP', severity: 'warning', meaning: 'a udp rule on the userspace datapath (the relay forwards TCP only)', fix: 'use the kernel datapath for UDP' },
  { code: 'TG_ROUTER_SUMMARY', severity: 'info', meaning: 'what the router forwards, its datapath and its fallback', fix: '-' },
  { code: 'TG_HEADER_MATCH_DROPPED', severity: 'warning', meaning: 'a VirtualService header match on a field the proxy removes before routing (a name with "_", or x-envoy-* at a gateway): `headers` never matches, `withoutHeaders` always does', fix: 'match on the "-" spelling, or run the proxy with --headers-with-underscores allow' },
  { code: 'TG_ALLOW_PRIVATE_INVALID', severity: 'error', meaning: 'a tollgate.io/allow-private-addresses entry that is not a CIDR/address, is "true", or reaches outside private (RFC 1918, ULA) and CGNAT space: the proxy ignores it and keeps denying', fix: 'list the private ranges the host resolves into, e.g. "10.20.0.0/16"; loopback or link-local need the proxy\'s --allow-cidr' },
  { code: 'TG_PRIVATE_ADDRESSES_ALLOWED', severity: 'info', meaning: 'a ServiceEntry lets DNS answers for its hosts in these private/CGNAT ranges pass the SSRF guard', fix: '-' },
  { code: 'TG_SOURCE_POOL_BAD', severity: 'error', meaning: 'a tollgate.io/source-address-pool / -mode annotation that does not parse: the pool is empty and its connections fail closed', fix: 'fix the annotation' },
  { code: 'TG_SOURCE_ADDRESS_SET', severity: 'info', meaning: 'a source address pool\'s complete set with its HostSubnet placement', fix: '-' },
  { code: 'TG_SOURCE_ADDRESSES_ALL', severity: 'info', meaning: 'every fixed source address the config can send from (what partners must allow)', fix: '-' },
  { code: 'TG_SOURCE_ADDRESS_UNPLACED', severity: 'warning', meaning: 'a pool address no HostSubnet lists', fix: 'add it to a HostSubnet\'s egressIPs' },
  { code: 'TG_SOURCE_ADDRESS_NO_STANDBY', severity: 'warning', meaning: 'a floating address only one node may host', fix: 'list it on a second HostSubnet' },
  { code: 'TG_SOURCE_POOL_SHADOWED', severity: 'warning', meaning: 'both source-address annotations on one ServiceEntry (the fixed address wins)', fix: 'keep one of them' },
  { code: 'TG_EGRESSIP_NAMESPACE_UNSEEN', severity: 'warning', meaning: 'an EgressIP or NetNamespace egressIPs for a namespace the proxy cannot recognise: no Pod IP of it in the config and no Gateway server terminating ISTIO_MUTUAL (whose client certificates prove the namespace)', fix: 'add an ISTIO_MUTUAL Gateway server for the callers, or include their Pods' },
  { code: 'TG_EGRESSIP_NO_NAMESPACE', severity: 'warning', meaning: 'an EgressIP whose namespaceSelector matches no Namespace in the config', fix: 'fix the selector or add the Namespace' },
  { code: 'TG_WEIGHTS_NOT_100', severity: 'error', meaning: 'split weights that do not add up to 100', fix: 'make the weights add up to 100' },
  { code: 'TG_DR_HOST_NOT_IN_REGISTRY', severity: 'warning', meaning: 'a DestinationRule for a host not in the registry', fix: 'declare the host or remove the rule' },
  { code: 'TG_DR_MUTUAL_NO_CERT', severity: 'error', meaning: 'MUTUAL TLS without client certificate material', fix: 'add credentialName, or clientCertificate and privateKey' },
  { code: 'TG_DR_SECRET_NOT_FOUND', severity: 'error', meaning: 'credentialName names a Secret that is not in the config (the snapshot would be rejected)', fix: 'add the Secret with tls.crt, tls.key and ca.crt' },
  { code: 'TG_SUBSET_NO_ENDPOINTS', severity: 'warning', meaning: 'a subset whose labels select no endpoint: 503 UH', fix: 'fix the subset labels or the endpoints\' labels' },
  { code: 'TG_SERVICE_NO_ENDPOINTS', severity: 'info', meaning: 'a Service with no endpoints known from the config', fix: '-' },
  { code: 'TG_SERVICE_SOURCE_IP', severity: 'info', meaning: 'externalTrafficPolicy: Local explained', fix: '-' },
  { code: 'TG_POD_HOSTALIASES', severity: 'info', meaning: 'hostAliases bypass DNS', fix: 'declare the names in a ServiceEntry instead' },
  { code: 'TG_ADMIN_EXPOSED', severity: 'warning', meaning: 'an Envoy admin address on 0.0.0.0', fix: 'bind the admin to 127.0.0.1' },
  { code: 'TG_ENVOY_LISTENER', severity: 'info', meaning: 'an Envoy bootstrap listener Tollgate serves', fix: '-' },
  { code: 'TG_EXPLICIT_PROXY', severity: 'info', meaning: 'a Gateway turns on the explicit proxy with tollgate.io/explicit-proxy', fix: '-' },
  { code: 'TG_EXPLICIT_PROXY_ANNOTATION', severity: 'error', meaning: 'the tollgate.io/explicit-proxy annotation\'s value is invalid', fix: 'fix the annotation' },
  { code: 'TG_RATE_LIMIT_ANNOTATION', severity: 'error', meaning: 'a tollgate.io/local-rate-limit value that is not N/UNIT [burst=M]: the routes are not limited', fix: 'write e.g. 100/s burst=200' },
  { code: 'TG_RATE_LIMIT_NO_HTTP', severity: 'warning', meaning: 'tollgate.io/local-rate-limit on a VirtualService without http routes', fix: 'move it to the VirtualService with the http routes' },
  { code: 'TG_GATEWAY_PORT_NOT_IN_SERVICE', severity: 'warning', meaning: 'a Gateway server port that is neither a port nor a targetPort of the Service in front of the gateway pods', fix: 'add the port to the gateway Service' },
  { code: 'TG_GATEWAY_SECRET_NAMESPACE', severity: 'error', meaning: 'a gateway credential Secret exists only in the Gateway\'s namespace; the gateway proxy reads it from its own namespace (the gateway pods\'), as Istio does', fix: 'put the Secret in the gateway pods\' namespace' },
  { code: 'TG_GATEWAY_SECRET_NOT_FOUND', severity: 'error', meaning: 'a Gateway credentialName names a Secret that is not in the config (the snapshot would be rejected)', fix: 'add the Secret with tls.crt and tls.key' },
  { code: 'TG_GATEWAY_SECRET_INVALID', severity: 'error', meaning: 'the credential Secret has no tls.crt/tls.key, a certificate or key that does not parse or match, an expired certificate, or (MUTUAL/OPTIONAL_MUTUAL) no client CA in ca.crt/cacert or a `<name>-cacert` Secret', fix: 'replace the Secret\'s key material' },
  { code: 'TG_GATEWAY_CONFLICT', severity: 'error', meaning: 'Gateways on the same proxies with servers on one port for overlapping hosts', fix: 'merge the servers or split the hosts' },
  { code: 'TG_GATEWAY_DUPLICATE_CERT', severity: 'warning', meaning: 'one credential served by Gateways on the same proxies', fix: 'serve it from one Gateway' },
  { code: 'TG_GATEWAY_AUTO_PASSTHROUGH', severity: 'warning', meaning: 'tls.mode AUTO_PASSTHROUGH is served as PASSTHROUGH (needs tls routes)', fix: 'use PASSTHROUGH with tls routes' },
  { code: 'TG_GATEWAY_API_BINDING', severity: 'warning', meaning: 'a VirtualService names a Gateway API Gateway: valid for Istio, not applied by Tollgate yet', fix: 'bind it to an Istio Gateway' },
  { code: 'TG_VS_MESH_HOST_CONFLICT', severity: 'error', meaning: 'two mesh VirtualServices for overlapping hosts, visible in a common namespace', fix: 'merge them or narrow exportTo' },
  { code: 'TG_VS_HOST_NOT_IN_GATEWAY', severity: 'warning', meaning: 'VirtualService hosts that a bound Gateway\'s servers do not accept', fix: 'add the host to the Gateway server or drop it from the VirtualService' },
  { code: 'TG_VS_HOST_UNSERVED', severity: 'warning', meaning: 'VirtualService hosts that none of its bound Gateways accepts: their routes are used nowhere', fix: 'add the hosts to a server of one of its Gateways, or drop them' },
  { code: 'TG_VS_RULE_UNREACHABLE', severity: 'warning', meaning: 'a rule after a rule without match, or whose every match an earlier match takes', fix: 'reorder or remove the rule' },
  { code: 'TG_VS_MATCH_INEFFECTIVE', severity: 'info', meaning: 'a match equal to or covered by an earlier one', fix: 'remove the match' },
  { code: 'TG_DEST_PORT_REQUIRED', severity: 'info', meaning: 'no destination port on a multi-port service: Tollgate uses the port the request arrived on', fix: 'name the destination port' },
  { code: 'TG_MIRROR_NOT_IN_REGISTRY', severity: 'error', meaning: 'a mirror host is in the registry nowhere: the copies are dropped', fix: 'add a ServiceEntry for the mirror host' },
  { code: 'TG_DR_TLS_NO_CA', severity: 'warning', meaning: 'TLS origination without caCertificates: the server is checked against the system trust store only', fix: 'set caCertificates (or credentialName with ca.crt)' },
  { code: 'TG_DR_PORT_TLS_NO_CA', severity: 'warning', meaning: 'port-level TLS origination without caCertificates', fix: 'set caCertificates for the port' },
  { code: 'TG_SE_ADDRESSES_REQUIRED', severity: 'warning', meaning: 'TCP (or unset) ports and no `addresses`', fix: 'add addresses, or turn on DNS auto-allocation' },
  { code: 'TG_SIDECAR_MULTIPLE_DEFAULTS', severity: 'error', meaning: 'more than one Sidecar without workloadSelector in a namespace', fix: 'keep one default Sidecar per namespace' },
  { code: 'TG_SIDECAR_NO_WORKLOAD', severity: 'warning', meaning: 'a Sidecar selector that selects no workload in the config', fix: 'fix the selector labels' },
  { code: 'TG_SIDECAR_SELECTOR_CONFLICT', severity: 'error', meaning: 'two Sidecars select the same pod', fix: 'make the selectors disjoint' },
  { code: 'TG_EXTERNALNAME_PORT_NAME', severity: 'warning', meaning: 'an ExternalName Service port without an HTTP/TLS protocol name', fix: 'name the port http-* / tls-* or set appProtocol' },
  { code: 'TG_SERVICE_PORT_PROTOCOL_CONFLICT', severity: 'warning', meaning: 'a Service port whose name prefix and appProtocol name different protocols, one of them GRPC or HTTP2: appProtocol wins, so the upstream protocol (HTTP/2 or not) is not the one the name says', fix: 'make the name prefix and appProtocol agree (grpc-* with appProtocol grpc)' },
  { code: 'TG_SERVICE_PORT_PROTOCOL', severity: 'info', meaning: 'a Service port whose name/appProtocol selects no protocol: TCP to Tollgate', fix: 'name the port (http-*, tls-*) or set appProtocol' },
  { code: 'TG_OUTBOUND_MODE_ANNOTATION', severity: 'error', meaning: 'a tollgate.io/outbound-mode value that is not report or enforce: the gateway enforces the registry', fix: 'write report or enforce' },
  { code: 'TG_PATH_NORMALIZATION_WEAK', severity: 'warning', meaning: 'pathNormalization NONE or BASE and a route matches on the path: `//admin` can pass the rule and reach a server that normalises it', fix: 'use MERGE_SLASHES or DECODE_AND_MERGE_SLASHES' },
  { code: 'TG_MESH_CONFIG_INVALID', severity: 'error', meaning: 'the istio ConfigMap\'s data.mesh is not YAML, or pathNormalization is not a known level', fix: 'fix the mesh config' },
  { code: 'TG_GATEWAY_TLS_UNSUPPORTED', severity: 'error', meaning: 'a terminated Gateway server has TLS settings the proxy cannot enforce (unknown or Envoy-style [A|B] cipher names, a TLS 1.3 suite in cipherSuites, minProtocolVersion above maxProtocolVersion, MUTUAL/OPTIONAL_MUTUAL without a CA, caCrl, verifyCertificateSpki/Hash, credentialNames); the data plane rejects a snapshot with it', fix: 'use OpenSSL cipher names (openssl ciphers -v), one per entry, and minProtocolVersion <= maxProtocolVersion; give MUTUAL a CA; drop the fields named as not supported' },
  { code: 'TG_L4_TLS_ORIGINATION', severity: 'error', meaning: 'a DestinationRule asks for SIMPLE or MUTUAL TLS on a port a tcp or tls route sends to: the TCP proxy originates only ISTIO_MUTUAL, so those connections would leave without that TLS', fix: 'route the traffic as HTTP so the proxy originates TLS, or let the client speak TLS itself (a tls route with SNI passthrough) and drop the tls setting for that port' },
  { code: 'TG_EGRESS_GATEWAY_PUBLIC', severity: 'warning', meaning: 'a LoadBalancer Service selects the pods of an egress gateway: an open relay for anyone who reaches the load balancer', fix: 'keep the egress gateway Service ClusterIP' },
  { code: 'TG_AUTHZ_PRINCIPAL_FORMAT', severity: 'error', meaning: 'a principal that is not <trust-domain>/ns/<namespace>/sa/<service-account> (e.g. written with spiffe://): it matches no mesh peer', fix: 'write cluster.local/ns/<namespace>/sa/<service-account>' },
  { code: 'TG_AUTHZ_REQUEST_PRINCIPALS', severity: 'error', meaning: 'requestPrincipals or request.auth.* conditions: Tollgate does not validate JWTs', fix: 'validate tokens in the application or in front of Tollgate' },
  { code: 'TG_AUTHZ_CUSTOM', severity: 'error', meaning: 'action CUSTOM (external authorizer) is not supported: matching requests are denied (fail closed)', fix: 'use ALLOW/DENY rules' },
  { code: 'TG_AUTHZ_TARGET_REF', severity: 'error', meaning: 'targetRef/targetRefs attach the policy to Gateway API objects Tollgate does not serve: it is enforced nowhere', fix: 'use spec.selector' },
  { code: 'TG_AUTHZ_BAD_VALUE', severity: 'error', meaning: 'an ipBlock that is not a CIDR, a port that is not a number, a path template, or a condition without values: it matches nothing', fix: 'fix the value' },
  { code: 'TG_AUTHZ_CONDITION_KEY', severity: 'error', meaning: 'a when.key Tollgate does not evaluate: it matches nothing', fix: 'use request.headers[...], source.ip, remote.ip, destination.ip, destination.port or connection.sni' },
  { code: 'TG_AUTHZ_ALLOW_NOTHING', severity: 'warning', meaning: 'an ALLOW policy without rules: every request to the workloads it selects is denied', fix: 'keep it if a deny-all is meant, else add rules' },
  { code: 'TG_AUTHZ_SELECTS_NOTHING', severity: 'warning', meaning: 'the selector matches no Pod, Deployment or Gateway in the config', fix: 'fix the labels or include the workload' },
  { code: 'TG_AUTHZ_HTTP_FIELDS_ON_TCP', severity: 'info', meaning: 'a DENY/AUDIT rule with HTTP-only fields: on TCP listeners they are ignored and the rule matches every connection its other fields match', fix: 'add operation.ports with the HTTP ports' },
  { code: 'TG_PEERAUTHN_NO_SIDECAR', severity: 'error', meaning: 'PeerAuthentication STRICT selects a workload that runs no sidecar: nothing enforces it there, plaintext is accepted', fix: 'inject the sidecar (namespace label istio-injection=enabled, or tollgate inject)' },
  { code: 'TG_PEERAUTHN_SELECTS_NOTHING', severity: 'warning', meaning: 'PeerAuthentication selector matches no Pod or Deployment of its namespace in the config', fix: 'fix the labels, or include the workload in the config' },
  { code: 'TG_PEERAUTHN_DISABLE_OVERRIDES_STRICT', severity: 'warning', meaning: 'a workload or port DISABLE reopens plaintext under a STRICT namespace or mesh policy', fix: 'keep it only for callers outside the mesh, restricted by an AuthorizationPolicy on ipBlocks' },
  { code: 'TG_PEERAUTHN_PLAINTEXT', severity: 'info', meaning: 'PeerAuthentication DISABLE: this traffic is plaintext and callers have no identity', fix: '-' },
  { code: 'TG_KIND_NOT_ENFORCED', severity: 'info', meaning: 'a recognised kind that Tollgate validates but does not enforce yet', fix: '-' },
];

/** Errors the config loader, the runtime and `tollgate run` raise (TollgateError / diagnostics). */
export const ERROR_CODES: readonly CodeEntry[] = [
  { code: 'TG_CONFIG_NOT_FOUND', severity: 'error', meaning: 'a -f path does not exist', fix: 'fix the path' },
  { code: 'TG_CONFIG_READ', severity: 'error', meaning: 'a file could not be read', fix: 'check permissions' },
  { code: 'TG_CONFIG_YAML', severity: 'error', meaning: 'YAML syntax error (the document is skipped; others in the file load)', fix: 'fix the YAML at the line named' },
  { code: 'TG_CONFIG_NOT_OBJECT', severity: 'error', meaning: 'a document is a list or scalar, not an object', fix: 'one Kubernetes object per document' },
  { code: 'TG_CONFIG_NO_KIND', severity: 'warning', meaning: 'a document without `kind` that is not an Envoy bootstrap', fix: 'add kind and apiVersion' },
  { code: 'TG_CONFIG_HELM_VALUES', severity: 'info', meaning: 'a document that looks like Helm values', fix: 'render the chart first (helm template)' },
  { code: 'TG_CONFIG_UNKNOWN_KIND', severity: 'warning', meaning: 'a kind Tollgate does not know (ignored)', fix: '-' },
  { code: 'TG_CONFIG_UNKNOWN_VERSION', severity: 'error', meaning: 'a known kind with an unsupported apiVersion', fix: 'use a supported apiVersion' },
  { code: 'TG_CONFIG_ASSUMED_VERSION', severity: 'warning', meaning: 'a known kind without apiVersion; the assumed version is named', fix: 'write the apiVersion' },
  { code: 'TG_CONFIG_INVALID', severity: 'error', meaning: 'a field with a wrong type or value (path, value and expectation named)', fix: 'fix the field' },
  { code: 'TG_CONFIG_REQUIRED', severity: 'error', meaning: 'a required field is missing', fix: 'add the field' },
  { code: 'TG_CONFIG_UNKNOWN_FIELD', severity: 'warning', meaning: 'a field the schema does not know (ignored, never silently); an error naming the field meant when it is within two edits of a known one', fix: 'fix its spelling or remove it' },
  { code: 'TG_CONFIG_EMPTY', severity: 'error', meaning: 'no YAML/JSON document at all (analyze), or a config change that yields no objects (control plane: refused)', fix: 'check the paths; pass --allow-empty-config if empty is really meant' },
  { code: 'TG_CONFIG_KIND_NOT_READ', severity: 'info', meaning: 'a common kind Tollgate does not read (ServiceAccount, ConfigMap, EnvoyFilter, ...; ignored)', fix: 'see docs/config.md for the kinds Tollgate reads' },
  { code: 'TG_CONFIG_KIND_TYPO', severity: 'error', meaning: 'an unknown kind within two edits of a known one (the object is ignored)', fix: 'write the kind named in the message' },
  { code: 'TG_CONFIG_DUPLICATE', severity: 'error', meaning: 'two objects with the same kind, namespace and name', fix: 'rename or remove one' },
  { code: 'TG_LISTENER_BIND', severity: 'error', meaning: 'a listener of a new snapshot could not be bound; the snapshot is rejected and the running one stays', fix: 'free the port or change the Gateway server port' },
  { code: 'TG_SNAPSHOT_COMPILE', severity: 'error', meaning: 'a snapshot could not be compiled (invalid regex, unknown HTTP filter, a TLS certificate that cannot be loaded, ...); rejected: exit at start-up, NACK / kept snapshot later', fix: 'the message names the listener/cluster, the object and its file:line' },
  { code: 'TG_RUNTIME_SHUTTING_DOWN', severity: 'error', meaning: 'a snapshot was applied after shutdown began', fix: '-' },
  { code: 'TG_NO_LISTENERS', severity: 'error', meaning: 'the config gives this proxy identity no listener; never starts "allow all"', fix: 'check --role/--namespace/--labels/--name' },
  { code: 'TG_CLI_USAGE', severity: 'error', meaning: 'a bad command-line flag', fix: 'see --help' },
];

const reasonIndex = new Map(REASONS.map((r) => [r.reason, r]));
const flagIndex = new Map(RESPONSE_FLAGS.map((f) => [f.flag, f]));

export function reasonEntry(reason: string): ReasonEntry | undefined {
  return reasonIndex.get(reason);
}

/** The entry of each flag in a combined value such as `UF,URX`. */
export function flagEntries(flags: string): FlagEntry[] {
  return flags.split(',').map((f) => flagIndex.get(f)).filter((f): f is FlagEntry => f !== undefined);
}

export function codeEntry(code: string): CodeEntry | undefined {
  return ANALYZER_CODES.find((c) => c.code === code) ?? ERROR_CODES.find((c) => c.code === code);
}
