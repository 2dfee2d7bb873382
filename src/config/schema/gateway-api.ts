/**
 * Kubernetes Gateway API kinds are recognised and validated at the top level now; routing from
 * them is future work (docs/config.md says so), and `analyze` reports that they are not yet applied.
 */
import { arr, obj, openObj, str, type Schema } from './dsl.js';

const parentRefs = arr(openObj({ name: str(), namespace: str(), sectionName: str() }, ['name']));
export const GATEWAY_API_SCHEMAS: Readonly<Record<string, Schema>> = {
  GatewayAPIGateway: openObj({ gatewayClassName: str(), listeners: arr(openObj({ name: str(), protocol: str() })) }, ['gatewayClassName']),
  HTTPRoute: openObj({ parentRefs, hostnames: arr(str()), rules: arr(openObj({})) }),
  TLSRoute: openObj({ parentRefs, hostnames: arr(str()), rules: arr(openObj({})) }),
  TCPRoute: openObj({ parentRefs, rules: arr(openObj({})) }),
};
export { obj };
