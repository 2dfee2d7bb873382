import { reasonEntry } from '../catalogue/catalogue.js';
import { buildSnapshot } from '../snapshot/build.js';
import { CompiledSnapshot } from '../dataplane/route/compile.js';
import { ClusterManager } from '../dataplane/upstream/cluster-manager.js';
import { parseCidr, type Cidr } from '../net/ip.js';
import type { Model } from '../model/build.js';
import type { Snapshot } from '../snapshot/types.js';
import { parseTraceUrl, trace, traceResolved, type TraceRequest, type TraceResult } from '../trace/trace.js';
import { CONFIG_OPTIONS, IDENTITY_HELP, IDENTITY_OPTIONS, identityFrom, loadConfig, parse, UsageError, type Io } from './common.js';
import { outputFormat, render } from './output.js';

export const TRACE_HELP = `Usage: tollgate trace -f PATH... [identity flags] [options] URL

Simulates one request through one proxy's snapshot with the data plane's own matching code and
prints the listener, filter chain, route, cluster, endpoints and source address it would use; or
the point of failure with an Envoy-style flag (NL no listener, NR no route, NC no cluster,
UH no healthy upstream, BLOCKED not in the registry) and the object to add.

URL forms:
  http://host[:port]/path?query   an HTTP request routed by Host
  tls://host:port                 a TLS connection routed by SNI (SNI = host unless --sni)
  tcp://ip:port                   a TCP connection to that destination

Options:
  -H, --header 'Name: value'  request header (repeatable)
  -X, --method METHOD         request method (default GET)
  --sni NAME                  SNI for tls:// (default: the URL host)
  --source-ip IP              the caller's IP (selects EgressIP / sourceNamespace matches)
  --source-principal P        the caller's mesh identity, as its mTLS certificate would prove it
                              (cluster.local/ns/NS/sa/SA): AuthorizationPolicy principals/namespaces
  --source-address IP         the proxy-wide fixed source address the proxy would run with
  --proxy PORT                send the request through the explicit-proxy listener on PORT:
                              absolute-form (http://...), or CONNECT host:port with -X CONNECT
  --allow-cidr CIDR           a range the proxy's SSRF guard allows (repeatable, as in run)
  --check-source-addresses    check that a fixed source address is assigned on this host, as the
                              proxy does before it dials (trace on the proxy's host); without
                              it trace assumes the address is there
  --dns-server HOST:PORT      ask this resolver when the outcome depends on DNS (as in run);
                              without it such an outcome is reported as "depends on DNS"
  --original-dst IP:PORT      sidecar: the address the app dialed (the captured connection's original
                              destination; default the URL host when it is an IP, and the URL port)
  -o, --output FMT            text (default), json or yaml

The request is checked by the proxy's own HTTP parser (a request the proxy would refuse is
refused here, flag DPE), normalised and routed by the proxy's route code, and the destination is
chosen by the proxy's cluster manager (SSRF guard, endpoint, source address). JSON output carries "decision": the status, flag, reason,
cluster, upstream host and source address the proxy's access log would show.

${IDENTITY_HELP}`;

export async function traceCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...CONFIG_OPTIONS, ...IDENTITY_OPTIONS, header: { type: 'string', short: 'H', multiple: true }, method: { type: 'string', short: 'X' }, sni: { type: 'string' }, 'source-ip': { type: 'string' }, 'source-principal': { type: 'string' }, 'source-address': { type: 'string' }, 'allow-cidr': { type: 'string', multiple: true }, proxy: { type: 'string' }, 'check-source-addresses': { type: 'boolean' }, 'dns-server': { type: 'string', multiple: true }, 'original-dst': { type: 'string' } },
    true,
  );
  if (values.help) {
    io.out(TRACE_HELP);
    return 0;
  }
  if (positionals.length !== 1 || !positionals[0]) throw new UsageError('trace needs exactly one URL (http://host/path, tls://host:port or tcp://ip:port)');
  const format = outputFormat(values.output, 'text');
  const headers: Record<string, string> = {};
  const headerLines: [string, string][] = [];
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H "${h}" is not "Name: value"`);
    // The name is kept as written (a space before the colon is for the parser to refuse).
    const line: [string, string] = [h.slice(0, colon), h.slice(colon + 1).trim()];
    headers[line[0].trim()] = line[1];
    headerLines.push(line);
  }
  const allowCidrs: Cidr[] = [];
  for (const c of values['allow-cidr'] ?? []) {
    const parsed = parseCidr(c);
    if (!parsed) throw new UsageError(`--allow-cidr ${c}: not a CIDR`);
    allowCidrs.push(parsed);
  }
  const dnsServers = values['dns-server'] ?? [];
  let request;
  try {
    request = parseTraceUrl(positionals[0], values.method ?? 'GET', headers, values.sni);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const proxyPort = values.proxy !== undefined ? Number(values.proxy) : undefined;
  if (proxyPort !== undefined && !(Number.isInteger(proxyPort) && proxyPort > 0 && proxyPort < 65536)) throw new UsageError(`--proxy ${values.proxy}: not a port`);
  request = { ...request, headerLines, ...(proxyPort !== undefined ? { proxyPort } : {}), ...(values['source-ip'] ? { sourceIp: values['source-ip'] } : {}), ...(values['source-principal'] ? { sourcePrincipal: values['source-principal'] } : {}), ...(values['source-address'] ? { proxySourceAddress: values['source-address'] } : {}), ...(values['original-dst'] ? { originalDst: parseOriginalDst(values['original-dst']) } : {}) };
  const loaded = loadConfig(values.file, io.err);
  if (!loaded) return 1;
  const identity = identityFrom(values, loaded.model, io.err);
  const snapshot = buildSnapshot(loaded.model, identity);
  const result = await runTrace(loaded.model, snapshot, request, { allowCidrs, dnsServers, checkSourceAddresses: values['check-source-addresses'] === true, ...(values['source-address'] ? { sourceAddress: values['source-address'] } : {}) });
  if (format !== 'text') io.out(render(result, format));
  else for (const line of formatTrace(positionals[0], identity.role, identity.namespace, result)) io.out(line);
  return result.ok ? 0 : 2;
}

export interface TraceFlags {
  readonly allowCidrs: readonly Cidr[];
  readonly dnsServers: readonly string[];
  readonly sourceAddress?: string;
  /** Check fixed source addresses against this host's interfaces (else assume they are assigned). */
  readonly checkSourceAddresses?: boolean;
}

/** What `tollgate trace` runs once the flags are parsed: a cluster manager built as `run` builds it, then the trace. */
export async function runTrace(model: Model, snapshot: Snapshot, request: TraceRequest, flags: TraceFlags): Promise<TraceResult> {
  const compiled = new CompiledSnapshot(snapshot);
  const clusters = new ClusterManager({ allowCidrs: flags.allowCidrs, ...(flags.checkSourceAddresses === true ? {} : { isLocalAddress: () => true }), ...(flags.dnsServers.length > 0 ? { dnsServers: flags.dnsServers } : {}), ...(flags.sourceAddress !== undefined ? { defaultSourceAddress: flags.sourceAddress } : {}) });
  clusters.setSnapshot(compiled);
  const env = { clusters };
  return flags.dnsServers.length > 0 ? traceResolved(model, snapshot, request, compiled, env) : trace(model, snapshot, request, compiled, env);
}

function parseOriginalDst(v: string): { ip: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v) ?? /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--original-dst ${JSON.stringify(v)}: expected IP:PORT ([IPv6]:PORT)`);
  return { ip: (m[1] ?? '').toLowerCase(), port: Number(m[2]) };
}

export function formatTrace(url: string, role: string, ns: string, r: TraceResult): string[] {
  const lines = [`trace ${url} through ${role} in ${ns} (snapshot ${r.snapshotVersion})`];
  const width = Math.max(...r.steps.map((s) => s.step.length), 8);
  for (const s of r.steps) {
    const where = s.origin ? `  [${s.origin.kind} ${s.origin.name}${s.origin.namespace ? '.' + s.origin.namespace : ''} ${s.origin.file}:${s.origin.line}]` : '';
    lines.push(`  ${s.step.padEnd(width)}  ${s.value}${where}`);
    if (s.detail) lines.push(`  ${''.padEnd(width)}    ${s.detail}`);
  }
  const d = r.decision;
  if (d !== undefined) lines.push(`decision: status ${d.status ?? 'from upstream'}, flag ${d.flag}, reason ${d.reason ?? '-'}, cluster ${d.cluster ?? '-'}, upstream ${d.upstreamHost ?? '-'}, source ${d.sourceAddress ?? 'OS default'}${d.location !== undefined ? `, location ${d.location}` : ''}`);
  // The same meaning and fix docs/errors.md gives (src/catalogue).
  const known = d?.reason ? reasonEntry(d.reason) : undefined;
  if (known !== undefined) lines.push(`  ${d!.reason}: ${known.meaning}`);
  if (r.ok) lines.push(`result: routed${r.status !== undefined ? ` (${r.status})` : ''}`);
  else {
    lines.push(`result: FAILED [${r.flag}]${r.status !== undefined ? ` ${r.status}` : ''} ${r.reason ?? ''}`);
    const fix = r.hint || known?.fix;
    if (fix) lines.push(`  fix: ${fix}`);
  }
  return lines;
}
