/** The traffic policy a cluster applies, as one line for `trace`. */
import type { Cluster } from '../snapshot/types.js';

export function describePolicy(c: Cluster): { value: string; detail: string } {
  const parts: string[] = [];
  const ch = c.consistentHash;
  parts.push(
    ch
      ? `lb consistentHash(${ch.header !== undefined ? `header ${ch.header}` : ch.cookie ? `cookie ${ch.cookie.name}` : ch.sourceIp ? 'source ip' : `query ${ch.queryParameter ?? ''}`}; else ${c.lbPolicy})`
      : `lb ${c.lbPolicy}`,
  );
  const t = c.tls;
  parts.push(
    t
      ? `tls ${t.mode}${t.sni ? ` sni ${t.sni}` : ''}${t.credentialName ? ` credentialName ${t.credentialName}` : t.clientCertificate ? ` cert ${t.clientCertificate}` : ''}${t.caCertificates ? ` ca ${t.caCertificates}` : t.credentialName ? '' : ' ca system roots'}${t.insecureSkipVerify ? ' VERIFICATION OFF' : ''}`
      : 'tls none (plain)',
  );
  const cp = c.connectionPool;
  const limits = [
    `connect timeout ${c.connectTimeoutMs} ms`,
    ...(cp?.maxConnections !== undefined ? [`max ${cp.maxConnections} in flight`] : []),
    ...(cp?.maxPendingRequests !== undefined ? [`max ${cp.maxPendingRequests} pending (then 503 UO)`] : []),
    ...(cp?.maxRequestsPerConnection !== undefined ? [`${cp.maxRequestsPerConnection} requests/connection`] : []),
    ...(cp?.maxRetries !== undefined ? [`max ${cp.maxRetries} retries in flight`] : []),
    ...(cp?.idleTimeoutMs !== undefined ? [`idle upstream connections closed after ${cp.idleTimeoutMs} ms`] : []),
  ];
  parts.push(`limits ${limits.join(', ')}`);
  const od = c.outlierDetection;
  parts.push(
    od
      ? `outlier eject after ${[od.consecutive5xxErrors > 0 ? `${od.consecutive5xxErrors} x 5xx` : '', od.consecutiveGatewayErrors > 0 ? `${od.consecutiveGatewayErrors} x gateway error` : ''].filter(Boolean).join(' or ') || 'never'} for ${od.baseEjectionTimeMs} ms (max ${od.maxEjectionPercent}% ejected)`
      : 'outlier off',
  );
  return { value: parts[0]!, detail: parts.slice(1).join('; ') };
}
