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
