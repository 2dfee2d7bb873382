/**
 * The one parser of certificate SANs as Node prints them, shared by the client-certificate facts
 * (tls/peer-certificate.ts) and the mesh identity (mesh/peer-identity.ts). No imports: both sides
 * of the data plane can use it without an import cycle.
 */
/** `subjectaltname` as Node prints it: `DNS:a, URI:spiffe://x, IP Address:1.2.3.4`. */
export function sansOf(text: string | undefined): { uri: string[]; dns: string[]; ip: string[] } {
  const out = { uri: [] as string[], dns: [] as string[], ip: [] as string[] };
  for (const part of (text ?? '').split(', ')) {
    const colon = part.indexOf(':');
    if (colon < 0) continue;
    const kind = part.slice(0, colon);
    const value = part.slice(colon + 1);
    if (kind === 'URI') out.uri.push(value);
    else if (kind === 'DNS') out.dns.push(value);
    else if (kind === 'IP Address') out.ip.push(value);
  }
  return out;
}

/** Whether a URI SAN is a SPIFFE ID (a mesh workload's identity). */
export function isSpiffeId(uri: string): boolean {
  return uri.startsWith('spiffe://');
}

/** The SPIFFE IDs among a certificate's URI SANs, in order (a mesh certificate carries one). */
export function spiffeIdsOf(subjectAltName: string | undefined): string[] {
  return sansOf(subjectAltName).uri.filter(isSpiffeId);
}
