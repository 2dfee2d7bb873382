/** `tollgate analyze`: load -> decode -> model -> every check; diagnostics sorted by file and line. */
import { hasErrors, sortDiagnostics, type Diagnostic } from '../config/diagnostics.js';
import { decodeResources, type Resource } from '../config/decode.js';
import { loadPaths } from '../config/load.js';
import { buildModel, type Model } from '../model/build.js';
import { egressIps, egressRouters, destinationRules, envoyBootstrap, explicitProxyAnnotations, kubernetesObjects, localRateLimitAnnotations, recognisedKinds, routeWeights } from './checks-other.js';
import {
  destinationInRegistry, gatewayRefsExist, gatewaySelectsWorkload, gatewayServersBound, gatewayWorkloadsUsed,
  httpsBypassesGateway, meshRoutesDeclared, meshRoutesReachGatewayServer, pathNormalizationWeak, subsetsDefined, tcpPortCollisions,
} from './checks-routing.js';
import { egressGatewayExposed } from './checks-install.js';
import { sourceAddressPools } from './checks-source.js';
import { allowPrivateAnnotations } from './checks-ssrf.js';
import { droppedHeaderMatches } from './checks-headers.js';
import { authorizationPolicyChecks, peerAuthenticationChecks } from './checks-security.js';
import { autoPassthroughServers, conflictingGateways, duplicateCertificates, gatewayPortsOnService, gatewaySecrets } from './checks-gateway.js';
import { destinationPortRequired, meshHostConflicts, partialWildcardHosts, mirrorDestinations, originationCaCertificates, ruleReachability, serviceEntryAddresses, servicePortNames, sidecarSelectors, vsHostsInGateways } from './checks-istio.js';
import { gatewayTlsSettings, l4TlsOrigination } from './checks-tls.js';
import { makeFinder, type Check } from './context.js';

export const CHECKS: readonly Check[] = [
  destinationInRegistry, subsetsDefined, gatewayRefsExist, gatewaySelectsWorkload, gatewayServersBound,
  meshRoutesReachGatewayServer, meshRoutesDeclared, httpsBypassesGateway, gatewayWorkloadsUsed, tcpPortCollisions,
  gatewayPortsOnService, gatewaySecrets, conflictingGateways, duplicateCertificates, autoPassthroughServers,
  meshHostConflicts, vsHostsInGateways, destinationPortRequired, mirrorDestinations, originationCaCertificates, serviceEntryAddresses,
  sidecarSelectors, servicePortNames, ruleReachability, partialWildcardHosts,
  egressRouters, egressIps, routeWeights, destinationRules, kubernetesObjects, envoyBootstrap, explicitProxyAnnotations, localRateLimitAnnotations, recognisedKinds,
  sourceAddressPools, allowPrivateAnnotations, droppedHeaderMatches, pathNormalizationWeak, egressGatewayExposed, authorizationPolicyChecks, peerAuthenticationChecks, gatewayTlsSettings, l4TlsOrigination,
];

export interface AnalysisResult {
  readonly files: readonly string[];
  readonly skipped: readonly string[];
  readonly resources: readonly Resource[];
  readonly model: Model;
  readonly diagnostics: readonly Diagnostic[];
  readonly failed: boolean;
}

export function analyzeModel(model: Model): Diagnostic[] {
  const out: Diagnostic[] = [];
  const finder = makeFinder(model, out);
  for (const check of CHECKS) check(finder);
  return out;
}

export function analyzePaths(paths: readonly string[], readStdin?: () => string): AnalysisResult {
  const loaded = loadPaths(paths, readStdin);
  const decoded = decodeResources(loaded.documents);
  const model = buildModel(decoded.resources);
  const empty: Diagnostic[] = loaded.documents.length === 0 && !hasErrors(loaded.diagnostics)
    ? [{ severity: 'error', code: 'TG_CONFIG_EMPTY', message: loaded.files.length === 0 ? `no *.yaml, *.yml or *.json file in ${paths.join(', ')}: nothing to analyze` : `${loaded.files.join(', ')}: no YAML document in the input: nothing to analyze`, pos: { file: paths[0] ?? '-', line: 0 }, hint: 'point -f at the files or directory that hold the config' }]
    : [];
  const diagnostics = sortDiagnostics([...empty, ...loaded.diagnostics, ...decoded.diagnostics, ...model.diagnostics, ...analyzeModel(model)]);
  return { files: loaded.files, skipped: loaded.skipped, resources: decoded.resources, model, diagnostics, failed: hasErrors(diagnostics) };
}

/** One line per input file: what it holds and what was found in it, so every file is explained. */
export function fileSummaries(result: AnalysisResult): string[] {
  return result.files.map((file) => {
    const shown = file === '-' ? '<stdin>' : file;
    const objects = result.resources.filter((r) => r.doc.file === shown);
    const counts = new Map<string, number>();
    for (const r of objects) counts.set(r.ref.kind, (counts.get(r.ref.kind) ?? 0) + 1);
    const kinds = [...counts.entries()].map(([k, n]) => (n > 1 ? `${n} ${k}` : k)).join(', ') || 'no objects';
    const diags = result.diagnostics.filter((d) => (d.pos ?? d.resource?.pos)?.file === shown);
    const n = (s: string) => diags.filter((d) => d.severity === s).length;
    return `${shown}: ${kinds} — ${n('error')} error(s), ${n('warning')} warning(s), ${n('info')} info`;
  }).concat(result.skipped.map((file) => `${file}: not read (in a directory only *.yaml, *.yml and *.json files are read as config)`));
}
