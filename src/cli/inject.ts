/**
 * `tollgate inject`: print Kubernetes YAML with the sidecar added to every Pod and workload
 * template, as `istioctl kube-inject` does (src/inject/). Argument parsing and YAML in/out only.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import { injectDocument, type InjectOptions } from '../inject/inject.js';
import { parse, UsageError, type Io } from './common.js';

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
  const { values } = parse(argv, {
    filename: { type: 'string', short: 'f' }, file: { type: 'string' }, image: { type: 'string' },
    'control-plane': { type: 'string' }, cni: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(INJECT_USAGE);
    return 0;
  }
  const file = values.filename ?? values.file;
  const controlPlane = values['control-plane'] ?? 'tollgate.istio-system.svc:15010';
  if (!/^[^:\s]+:\d{1,5}$/.test(controlPlane)) throw new UsageError(`--control-plane ${controlPlane}: expected HOST:PORT`);
  const opts: InjectOptions = { image: values.image ?? 'tollgate:latest', controlPlane, cni: values.cni === true };
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
