/** Gateway TLS settings the data plane cannot enforce are errors (a snapshot with them is rejected). */
import { isTerminated } from '../snapshot/generate/gateway.js';
import { tlsParameters } from '../snapshot/generate/tls-settings.js';
import type { Check } from './context.js';

export const gatewayTlsSettings: Check = (f) => {
  for (const g of f.model.gateways) {
    for (const s of g.servers) {
      if (!isTerminated(s)) continue;
      const p = tlsParameters(s.server.tls);
      if (p.unsupported !== undefined) {
        f.report('error', 'TG_GATEWAY_TLS_UNSUPPORTED', g.resource, ['spec', 'servers', s.index, 'tls'], `server ${s.index} (port ${s.server.port.number}): ${p.unsupported}; a proxy refuses a snapshot with this server (it does not start, or keeps its previous config)`, 'use OpenSSL cipher names (openssl ciphers -v), one per entry, and minProtocolVersion <= maxProtocolVersion; give MUTUAL a CA; drop the fields named as not supported');
      }
    }
  }
};
