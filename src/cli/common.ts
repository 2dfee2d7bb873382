/**
 * Flags shared by every command that needs config and a proxy identity, and the pipeline
 * load -> decode -> model that they all run first. Argument parsing only: no logic of its own.
 */
import type { ParseArgsConfig } from 'node:util';
import { parseLabels, UsageError } from './args.js';
import { formatDiagnostic, hasErrors, type Diagnostic } from '../config/diagnostics.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths } from '../config/load.js';
import { buildModel, type Model } from '../model/build.js';
import { labelsMatch } from '../model/selectors.js';
import { routerFor } from '../snapshot/generate/router.js';
import type { ProxyIdentity, ProxyRole } from '../snapshot/types.js';

export const CONFIG_OPTIONS = {
  file: { type: 'string', short: 'f', multiple: true },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const IDENTITY_OPTIONS = {
  role: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  labels: { type: 'string', short: 'l' },
  name: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const IDENTITY_HELP = `Proxy identity (the same config compiles differently per proxy, as istiod does):
  --role gateway|sidecar|router   default: gateway
  -n, --namespace NS              the proxy's namespace
  -l, --labels k=v[,k=v]          the proxy's pod labels (a gateway gets the Gateways whose selector matches)
  --name NAME                     the proxy's name (the Deployment name for a router)
  When --labels is omitted and the config has exactly one Gateway selector (or one egress router),
  that identity is used and printed on stderr.`;

export { parse, parseLabels, UsageError, type Io } from './args.js';

export interface Loaded {
  readonly model: Model;
  readonly diagnostics: Diagnostic[];
}

/** Loads config; prints errors and returns undefined when the config cannot be used. */
export function loadConfig(files: readonly string[] | undefined, stderr: (s: string) => void): Loaded | undefined {
  if (!files || files.length === 0) throw new UsageError('no config given: pass -f FILE|DIR (repeatable, - for stdin)');
  const loaded = loadPaths(files);
  const decoded = decodeResources(loaded.documents);
  const model = buildModel(decoded.resources);
  const diagnostics = [...loaded.diagnostics, ...decoded.diagnostics, ...model.diagnostics];
  if (hasErrors(diagnostics)) {
    for (const d of diagnostics.filter((x) => x.severity === 'error')) stderr(formatDiagnostic(d));
    stderr('config has errors; nothing compiled (run `tollgate analyze` for the full report)');
    return undefined;
  }
  return { model, diagnostics };
}

const ROLES: readonly ProxyRole[] = ['gateway', 'sidecar', 'router'];

/**
 * The proxy identity from flags; when labels are omitted, inferred from the config if there is
 * exactly one candidate, so `config-dump -f gateway.yaml` works without knowing the labels.
 */
export function identityFrom(values: { role?: string; namespace?: string; labels?: string; name?: string; nodeName?: string }, model: Model, note: (s: string) => void): ProxyIdentity {
  const role = (values.role ?? 'gateway') as ProxyRole;
  if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got "${values.role}"`);
  let labels = parseLabels(values.labels);
  let namespace = values.namespace;
  const name = values.name ?? '';
  if (values.labels === undefined && role === 'gateway') {
    const selectors = [...new Map(model.gateways.filter((g) => Object.keys(g.selector).length > 0).map((g) => [JSON.stringify(g.selector), g])).values()];
    if (selectors.length === 1 && selectors[0]) {
      const g = selectors[0];
      labels = { ...g.selector };
      const w = model.workloads.find((x) => labelsMatch(g.selector, x.labels));
      namespace ??= w?.namespace ?? g.resource.namespace;
      note(`identity: gateway ${namespace} ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')} (inferred from Gateway ${g.resource.name}.${g.resource.namespace}; pass --labels to choose)`);
    } else if (selectors.length > 1) {
      const options = selectors.map((g) => Object.entries(g.selector).map(([k, v]) => `${k}=${v}`).join(',')).join(' | ');
      throw new UsageError(`several Gateway selectors in the config (${options}): pass --labels and --namespace`);
    }
  }
  if (values.labels === undefined && role === 'router' && !values.name) {
    const inNs = model.egressRouters.filter((r) => namespace === undefined || r.namespace === namespace);
    if (inNs.length === 1 && inNs[0]) {
      labels = { ...inNs[0].podLabels };
      namespace ??= inNs[0].namespace;
      note(`identity: router ${namespace} ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')} (inferred from Deployment ${inNs[0].name})`);
    }
  }
  const identity: ProxyIdentity = { role, namespace: namespace ?? 'default', name, labels, ...(values.nodeName ? { nodeName: values.nodeName } : {}) };
  if (role === 'router' && !routerFor(model, identity)) {
    note(`warning: no egress router Deployment matches this identity in namespace ${identity.namespace}; the snapshot has no listeners`);
  }
  return identity;
}
