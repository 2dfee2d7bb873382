/**
 * TLS origination for clusters with `tls` (DestinationRule tls SIMPLE/MUTUAL, Envoy
 * UpstreamTlsContext): the connected TCP socket from the ClusterManager is wrapped with
 * tls.connect. SNI: cluster.tls.sni, else the DNS name the address came from, else the cluster's
 * service host (never an IP). The certificate is verified against the system roots (plus
 * NODE_EXTRA_CA_CERTS) or cluster.tls.caCertificates, and its name against the SNI — or against
 * cluster.tls.subjectAltNames when given. insecureSkipVerify turns verification off.
 * Failures: 503 UF `upstream_tls_handshake_failed` (detail: the TLS error code).
 */
import { isIP, type Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { nodeTls } from '../../shared/lazy-builtins.js';
import type { Cluster } from '../../snapshot/types.js';
import type { UpstreamTarget } from '../upstream/cluster-manager.js';
import { failure, type UpstreamFailure } from '../upstream/failure.js';
import type { UpstreamTlsContexts } from '../upstream/tls-context.js';
import { MESH_ALPN } from '../mesh/contexts.js';
import { spiffeIdsOf } from '../tls/subject-alt-names.js';

/**
 * A mesh server is known by its SPIFFE ID, not a host name: one of `subjectAltNames` (DestinationRule)
 * when set, else any spiffe:// identity (the chain was already verified against the mesh roots).
 */
function checkMeshIdentity(cert: PeerCertificate, sans: readonly string[] | undefined): Error | undefined {
  const ids = spiffeIdsOf(cert.subjectaltname);
  if (ids.length === 0) return new Error('the server certificate has no spiffe:// identity');
  if (sans === undefined || sans.length === 0 || ids.some((id) => sans.includes(id))) return undefined;
  return new Error(`the server is ${ids.join(', ')}, not one of subjectAltNames ${sans.join(', ')}`);
}

/** The SNI sent for this target (undefined: none, when only an IP is known). */
export function sniFor(cluster: Cluster, target: UpstreamTarget): string | undefined {
  const t = cluster.tls;
  const name = t?.sni ?? target.hostname ?? cluster.serviceHost;
  if (name === '' || name.includes('*') || isIP(name) !== 0) return undefined;
  return name;
}

/**
 * Whether a connection to `cluster` is wrapped in TLS: it has TLS settings, unless they are auto
 * mTLS and this proxy has no workload certificate yet (plaintext: the server's PeerAuthentication decides).
 */
export function originatesTls(cluster: Cluster, contexts: UpstreamTlsContexts): boolean {
  return cluster.tls !== undefined && !(cluster.tls.auto === true && contexts.meshCertificate() === undefined);
}

export type TlsResult = { readonly ok: true; readonly socket: TLSSocket } | { readonly ok: false; readonly failure: UpstreamFailure };

/** Wraps `socket` in TLS; resolves once the handshake finished (or failed / timed out). */
export function originateTls(socket: Socket, cluster: Cluster, target: UpstreamTarget, sni: string | undefined, timeoutMs: number, upstreamHost: string, localAddress: string | undefined, contexts: UpstreamTlsContexts, alpn: 'h2' | 'http/1.1' | 'none' = 'http/1.1'): Promise<TlsResult> {
  const t = cluster.tls!;
  const extra = { cluster: cluster.name, upstreamHost, ...(localAddress !== undefined ? { upstreamLocalAddress: localAddress } : {}) };
  // Built when the snapshot was applied; credentialName from snapshot secrets, file rotation (upstream/tls-context.ts).
  const ctx = contexts.contextFor(t);
  if (ctx instanceof Error) {
    socket.destroy();
    return Promise.resolve({ ok: false, failure: failure('UF', 'upstream_tls_credential_unavailable', ctx.message, false, extra) });
  }
  const sans = t.subjectAltNames;
  return new Promise<TlsResult>((resolve) => {
    let done = false;
    const s = nodeTls().connect({
      socket,
      secureContext: ctx,
      ...(sni !== undefined ? { servername: sni } : {}),
      // Mesh peers are offered Istio's ALPN first; a Tollgate server answers none, and HTTP/1.1 follows.
      // 'none': a TCP stream (the TCP proxy), which has no application protocol to offer.
      ALPNProtocols: alpn === 'none' ? [...MESH_ALPN] : t.mode === 'ISTIO_MUTUAL' ? [...MESH_ALPN, alpn] : [alpn],
      rejectUnauthorized: t.insecureSkipVerify !== true,
      checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
        if (t.mode === 'ISTIO_MUTUAL') return checkMeshIdentity(cert, sans);
        if (sans && sans.length > 0) {
          for (const san of sans) if (nodeTls().checkServerIdentity(san, cert) === undefined) return undefined;
          return new Error(`certificate matches none of subjectAltNames ${sans.join(', ')}`);
        }
        return nodeTls().checkServerIdentity(sni ?? host ?? target.ip, cert);
      },
    });
    const timer = setTimeout(() => finish(failure('UF', 'upstream_tls_handshake_failed', `no TLS handshake with ${upstreamHost} within ${timeoutMs} ms`, true, extra)), timeoutMs);
    const finish = (f: UpstreamFailure | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.removeListener('error', onError);
      if (f !== undefined) {
        s.destroy();
        resolve({ ok: false, failure: f });
      } else {
        resolve({ ok: true, socket: s });
      }
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      finish(failure('UF', 'upstream_tls_handshake_failed', `TLS to ${upstreamHost}${sni !== undefined ? ` (SNI ${sni})` : ''}: ${err.code ?? ''} ${err.message}`.trim(), false, extra));
    };
    s.once('error', onError);
    s.once('secureConnect', () => finish(undefined));
  });
}
