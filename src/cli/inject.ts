/**
 * `tollgate inject`: print Kubernetes YAML with the sidecar added to every Pod and workload
 * template, as `istioctl kube-inject` does (src/inject/). Argument parsing and YAML in/out only.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import { injectDocument, type InjectOptions } from '../inject/inject.js';
import { UsageError, type Io } from './common.js';

export const INJECT_USAGE = `usage: tollgate inject -f FILE [options]

Prints FILE's documents with the Tollgate sidecar injected into every Pod and workload pod template
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job): an init container that writes the capture
rules ('tollgate init', or the CNI plugin with --cni) and an istio-proxy container
('tollgate run --role sidecar' as uid 1337, identity from the downward API, readiness on 15021,
metrics on 15090). Other documents pass through unchanged.

Pod-template annotations honoured: sidecar.istio.io/inject: "false" (skip),
sidecar.istio.io/interceptionMode (REDIRECT|TPROXY), traffic.sidecar.istio.io/includeOutboundIPRanges,
excludeOutboundIPRanges, includeInboundPorts, excludeInboundPorts, excludeOutboundPorts.

  -f, --filename FILE        the manifest ('-' = stdin)
  --image IMAGE              the Tollgate image (default tollgate:latest)
  --control-plane HOST:PORT  where sidecars get their snapshot (default tollgate.istio-system.svc:15010)
  --cni                      the CNI plugin writes the rules: no init container
`;

export function injectCommand(argv: string[], io: Io): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    io.out(INJECT_USAGE);
    return 0;
  }
  let file: string | undefined;
  let opts: InjectOptions = { image: 'tollgate:latest', controlPlane: 'tollgate.istio-system.svc:15010', cni: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '-f' || flag === '--filename' || flag === '--file') file = next();
    else if (flag === '--image') opts = { ...opts, image: next() };
    else if (flag === '--control-plane') {
      const v = next();
      if (!/^[^:\s]+:\d{1,5}$/.test(v)) throw new UsageError(`--control-plane ${v}: expected HOST:PORT`);
      opts = { ...opts, controlPlane: v };
    } else if (flag === '--cni') opts = { ...opts, cni: true };
    else throw new UsageError(`unknown option ${flag}`);
  }
  if (file === undefined) throw new UsageError('inject needs -f FILE');
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    io.err(`tollgate inject: ${file}: ${(e as Error).message}`);
    return 1;
  }
  const out: string[] = [];
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length > 0) {
      const e = d.errors[0]!;
      io.err(`tollgate inject: ${file}: ${e.message}`);
      return 1;
    }
    const value: unknown = d.toJS();
    if (value === null || value === undefined) continue;
    const r = injectDocument(value, opts);
    if (!r.injected && r.why !== '' && !r.why.endsWith('no pod template')) io.err(`tollgate inject: skipped ${r.why}`);
    out.push(stringify(r.doc, { lineWidth: 0 }).trimEnd());
  }
  io.out(out.join('\n---\n'));
  return 0;
}
