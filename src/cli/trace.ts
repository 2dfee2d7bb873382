import { buildSnapshot } from '../snapshot/build.js';
import { parseTraceUrl, trace, type TraceResult } from '../trace/trace.js';
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
  --source-address IP         the proxy-wide fixed source address the proxy would run with
  -o, --output FMT            text (default), json or yaml

${IDENTITY_HELP}`;

export function traceCommand(argv: string[], io: Io): number {
  const { values, positionals } = parse(
    argv,
    { ...CONFIG_OPTIONS, ...IDENTITY_OPTIONS, header: { type: 'string', short: 'H', multiple: true }, method: { type: 'string', short: 'X' }, sni: { type: 'string' }, 'source-ip': { type: 'string' }, 'source-address': { type: 'string' } },
    true,
  );
  if (values.help) {
    io.out(TRACE_HELP);
    return 0;
  }
  if (positionals.length !== 1 || !positionals[0]) throw new UsageError('trace needs exactly one URL (http://host/path, tls://host:port or tcp://ip:port)');
  const format = outputFormat(values.output, 'text');
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H "${h}" is not "Name: value"`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  let request;
  try {
    request = parseTraceUrl(positionals[0], values.method ?? 'GET', headers, values.sni);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  request = { ...request, ...(values['source-ip'] ? { sourceIp: values['source-ip'] } : {}), ...(values['source-address'] ? { proxySourceAddress: values['source-address'] } : {}) };
  const loaded = loadConfig(values.file, io.err);
  if (!loaded) return 1;
  const identity = identityFrom(values, loaded.model, io.err);
  const snapshot = buildSnapshot(loaded.model, identity);
  const result = trace(loaded.model, snapshot, request);
  if (format !== 'text') io.out(render(result, format));
  else for (const line of formatTrace(positionals[0], identity.role, identity.namespace, result)) io.out(line);
  return result.ok ? 0 : 2;
}

export function formatTrace(url: string, role: string, ns: string, r: TraceResult): string[] {
  const lines = [`trace ${url} through ${role} in ${ns} (snapshot ${r.snapshotVersion})`];
  const width = Math.max(...r.steps.map((s) => s.step.length), 8);
  for (const s of r.steps) {
    const where = s.origin ? `  [${s.origin.kind} ${s.origin.name}${s.origin.namespace ? '.' + s.origin.namespace : ''} ${s.origin.file}:${s.origin.line}]` : '';
    lines.push(`  ${s.step.padEnd(width)}  ${s.value}${where}`);
    if (s.detail) lines.push(`  ${''.padEnd(width)}    ${s.detail}`);
  }
  if (r.ok) lines.push(`result: routed${r.status !== undefined ? ` (${r.status})` : ''}`);
  else {
    lines.push(`result: FAILED [${r.flag}]${r.status !== undefined ? ` ${r.status}` : ''} ${r.reason ?? ''}`);
    if (r.hint) lines.push(`  fix: ${r.hint}`);
  }
  return lines;
}
