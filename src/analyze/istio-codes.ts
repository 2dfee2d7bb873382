/**
 * Istio's analysis messages (istioctl analyze, https://istio.io/latest/docs/reference/config/analysis/)
 * that Tollgate's checks correspond to: each Tollgate code that reports the same problem on the same
 * resource carries the Istio code and name too, so `analyze -o json` can be read by tools that know
 * Istio's catalogue. Tollgate's severity may be stricter than Istio's level (secure by default).
 */
export interface IstioMessage {
  readonly code: string;
  readonly name: string;
  readonly level: 'Error' | 'Warning' | 'Info';
}

const m = (code: string, name: string, level: IstioMessage['level']): IstioMessage => ({ code, name, level });

export const ISTIO_MESSAGES = {
  ReferencedResourceNotFound: m('IST0101', 'ReferencedResourceNotFound', 'Error'),
  ConflictingMeshGatewayVirtualServiceHosts: m('IST0109', 'ConflictingMeshGatewayVirtualServiceHosts', 'Error'),
  ConflictingSidecarWorkloadSelectors: m('IST0110', 'ConflictingSidecarWorkloadSelectors', 'Error'),
  MultipleSidecarsWithoutWorkloadSelectors: m('IST0111', 'MultipleSidecarsWithoutWorkloadSelectors', 'Error'),
  VirtualServiceDestinationPortSelectorRequired: m('IST0112', 'VirtualServiceDestinationPortSelectorRequired', 'Error'),
  DeploymentAssociatedToMultipleServices: m('IST0116', 'DeploymentAssociatedToMultipleServices', 'Warning'),
  PortNameIsNotUnderNamingConvention: m('IST0118', 'PortNameIsNotUnderNamingConvention', 'Info'),
  NoMatchingWorkloadsFound: m('IST0127', 'NoMatchingWorkloadsFound', 'Warning'),
  NoServerCertificateVerificationDestinationLevel: m('IST0128', 'NoServerCertificateVerificationDestinationLevel', 'Warning'),
  NoServerCertificateVerificationPortLevel: m('IST0129', 'NoServerCertificateVerificationPortLevel', 'Warning'),
  VirtualServiceUnreachableRule: m('IST0130', 'VirtualServiceUnreachableRule', 'Warning'),
  VirtualServiceIneffectiveMatch: m('IST0131', 'VirtualServiceIneffectiveMatch', 'Info'),
  VirtualServiceHostNotFoundInGateway: m('IST0132', 'VirtualServiceHostNotFoundInGateway', 'Warning'),
  ServiceEntryAddressesRequired: m('IST0134', 'ServiceEntryAddressesRequired', 'Warning'),
  DeploymentConflictingPorts: m('IST0137', 'DeploymentConflictingPorts', 'Warning'),
  GatewayDuplicateCertificate: m('IST0138', 'GatewayDuplicateCertificate', 'Warning'),
  IngressRouteRulesNotAffected: m('IST0140', 'IngressRouteRulesNotAffected', 'Warning'),
  ConflictingGateways: m('IST0145', 'ConflictingGateways', 'Error'),
  ExternalNameServiceTypeInvalidPortName: m('IST0150', 'ExternalNameServiceTypeInvalidPortName', 'Warning'),
  InvalidGatewayCredential: m('IST0161', 'InvalidGatewayCredential', 'Error'),
  GatewayPortNotDefinedOnService: m('IST0162', 'GatewayPortNotDefinedOnService', 'Warning'),
  DestinationRuleSubsetNotSelectPods: m('IST0173', 'DestinationRuleSubsetNotSelectPods', 'Error'),
  UnknownDestinationRuleHost: m('IST0174', 'UnknownDestinationRuleHost', 'Warning'),
} as const;

type IstioName = keyof typeof ISTIO_MESSAGES;

/** Tollgate code -> the Istio message for the same problem. One table, so the catalogue can list both. */
export const ISTIO_EQUIVALENT: Readonly<Record<string, IstioName>> = {
  TG_DEST_NOT_IN_REGISTRY: 'ReferencedResourceNotFound',
  TG_DEST_PORT_NOT_DECLARED: 'ReferencedResourceNotFound',
  TG_MIRROR_NOT_IN_REGISTRY: 'ReferencedResourceNotFound',
  TG_SUBSET_NO_DESTINATIONRULE: 'ReferencedResourceNotFound',
  TG_SUBSET_NOT_FOUND: 'ReferencedResourceNotFound',
  TG_GATEWAY_NOT_FOUND: 'ReferencedResourceNotFound',
  TG_GATEWAY_NO_WORKLOAD: 'ReferencedResourceNotFound',
  TG_GATEWAY_SECRET_NOT_FOUND: 'ReferencedResourceNotFound',
  TG_SIDECAR_NO_WORKLOAD: 'ReferencedResourceNotFound',
  TG_AUTHZ_NAMESPACE_NOT_FOUND: 'ReferencedResourceNotFound',
  TG_VS_MESH_HOST_CONFLICT: 'ConflictingMeshGatewayVirtualServiceHosts',
  TG_SIDECAR_SELECTOR_CONFLICT: 'ConflictingSidecarWorkloadSelectors',
  TG_SIDECAR_MULTIPLE_DEFAULTS: 'MultipleSidecarsWithoutWorkloadSelectors',
  TG_DEST_PORT_REQUIRED: 'VirtualServiceDestinationPortSelectorRequired',
  TG_DEPLOYMENT_PROTOCOL_CONFLICT: 'DeploymentAssociatedToMultipleServices',
  TG_SERVICE_PORT_PROTOCOL: 'PortNameIsNotUnderNamingConvention',
  TG_AUTHZ_NO_WORKLOAD: 'NoMatchingWorkloadsFound',
  TG_DR_TLS_NO_CA: 'NoServerCertificateVerificationDestinationLevel',
  TG_DR_PORT_TLS_NO_CA: 'NoServerCertificateVerificationPortLevel',
  TG_VS_RULE_UNREACHABLE: 'VirtualServiceUnreachableRule',
  TG_VS_MATCH_INEFFECTIVE: 'VirtualServiceIneffectiveMatch',
  TG_VS_HOST_NOT_IN_GATEWAY: 'VirtualServiceHostNotFoundInGateway',
  TG_SE_ADDRESSES_REQUIRED: 'ServiceEntryAddressesRequired',
  TG_DEPLOYMENT_PORT_CONFLICT: 'DeploymentConflictingPorts',
  TG_GATEWAY_DUPLICATE_CERT: 'GatewayDuplicateCertificate',
  TG_INGRESS_SUBSET_IGNORED: 'IngressRouteRulesNotAffected',
  TG_GATEWAY_CONFLICT: 'ConflictingGateways',
  TG_EXTERNALNAME_PORT_NAME: 'ExternalNameServiceTypeInvalidPortName',
  TG_GATEWAY_SECRET_INVALID: 'InvalidGatewayCredential',
  TG_GATEWAY_PORT_NOT_IN_SERVICE: 'GatewayPortNotDefinedOnService',
  TG_SUBSET_NO_ENDPOINTS: 'DestinationRuleSubsetNotSelectPods',
  TG_DR_HOST_NOT_IN_REGISTRY: 'UnknownDestinationRuleHost',
};

export function istioEquivalent(code: string): { code: string; name: string } | undefined {
  const name = ISTIO_EQUIVALENT[code];
  if (name === undefined) return undefined;
  const msg = ISTIO_MESSAGES[name];
  return { code: msg.code, name: msg.name };
}
