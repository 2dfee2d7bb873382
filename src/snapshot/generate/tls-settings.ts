/**
 * A Gateway server's TLS parameters (minProtocolVersion, maxProtocolVersion, cipherSuites) as the
 * data plane enforces them, and what it cannot enforce. One function for the generator and for
 * `analyze`, so the check says exactly what the listener does.
 *
 * Istio's defaults for gateways: TLS 1.2 minimum, TLS 1.3 maximum. `cipherSuites` restrict TLS 1.2
 * and below only (as in Envoy: TLS 1.3 suites are not configurable there); the TLS 1.3 suites stay
 * OpenSSL's defaults. Names are OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`); Envoy's equal-preference
 * groups (`[A|B]`) and names this OpenSSL does not know are unsupported: a snapshot with settings
 * that cannot be applied is rejected rather than run with weaker ones. So are client-certificate
 * checks the proxy does not make (caCrl, verifyCertificateSpki, verifyCertificateHash) and
 * `credentialNames` (several certificates on one server), and MUTUAL without a CA.
 */
import { getCiphers } from 'node:tls';
import type { ServerTls } from '../../config/types.js';

export type TlsVersionName = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface TlsParameters {
  readonly minVersion: TlsVersionName;
  readonly maxVersion: TlsVersionName;
  /** OpenSSL cipher list for TLS <= 1.2; unset = OpenSSL's defaults. */
  readonly ciphers?: string;
  /** Why these settings cannot be enforced (the data plane then rejects the snapshot). */
  readonly unsupported?: string;
}

const VERSIONS: Readonly<Record<string, TlsVersionName>> = { TLSV1_0: 'TLSv1', TLSV1_1: 'TLSv1.1', TLSV1_2: 'TLSv1.2', TLSV1_3: 'TLSv1.3' };
const ORDER: readonly TlsVersionName[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

let known: Set<string> | undefined;

/** OpenSSL's TLS cipher-suite names this Node knows (lower case). */
function knownCiphers(): Set<string> {
  known ??= new Set(getCiphers());
  return known;
}

/** Server TLS fields that ask for a check this proxy does not make. */
const UNENFORCED = ['caCrl', 'verifyCertificateSpki', 'verifyCertificateHash', 'credentialNames'] as const;

export function tlsParameters(tls: Pick<ServerTls, 'mode' | 'credentialName' | 'caCertificates' | 'minProtocolVersion' | 'maxProtocolVersion' | 'cipherSuites' | (typeof UNENFORCED)[number]> | undefined): TlsParameters {
  const min = VERSIONS[tls?.minProtocolVersion ?? ''] ?? 'TLSv1.2';
  const max = VERSIONS[tls?.maxProtocolVersion ?? ''] ?? 'TLSv1.3';
  const problems: string[] = [];
  if (ORDER.indexOf(min) > ORDER.indexOf(max)) problems.push(`minProtocolVersion ${tls?.minProtocolVersion} is above maxProtocolVersion ${tls?.maxProtocolVersion}`);
  const suites = tls?.cipherSuites ?? [];
  const bad = suites.filter((c) => !knownCiphers().has(c.toLowerCase()) || c.startsWith('TLS_'));
  if (bad.length > 0) problems.push(`cipherSuites ${bad.map((c) => JSON.stringify(c)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not an OpenSSL TLS 1.2 cipher name this proxy supports (Envoy's [A|B] groups and TLS 1.3 suite names are not accepted)`);
  // With credentialName the CA comes from the Secret (checked when the snapshot is applied).
  if ((tls?.mode === 'MUTUAL' || tls?.mode === 'OPTIONAL_MUTUAL') && !tls.credentialName && !tls.caCertificates) problems.push(`tls.mode ${tls.mode} verifies client certificates, and no caCertificates (or credentialName) gives the CA`);
  for (const field of UNENFORCED) {
    const v = tls?.[field];
    if (v !== undefined && v.length > 0) problems.push(`${field} is not supported by this proxy`);
  }
  return {
    minVersion: min,
    maxVersion: max,
    ...(suites.length > 0 && bad.length === 0 ? { ciphers: suites.join(':') } : {}),
    ...(problems.length > 0 ? { unsupported: problems.join('; ') } : {}),
  };
}
