/**
 * `tollgate suggest`: what a proxy observed -> ServiceEntries (and gateway objects) that admit it.
 * Sources: JSON access-log files or stdin, or a running proxy's admin API (/observed).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { seenFromAccessLog, type LogProblem } from '../author/from-access-log.js';
import { renderYaml } from '../author/render.js';
import { suggest, type Seen, type SuggestOptions } from '../author/suggest.js';
import { parse, parseLabels, UsageError, type Io } from './common.js';

export const SUGGEST_HELP = `Usage: tollgate suggest (--admin URL | --access-log FILE|- ...) [options]

Prints YAML that admits exactly the egress traffic a proxy observed: a ServiceEntry per external
host, with the ports and protocols seen (HTTP by Host, TLS by SNI or CONNECT, TCP by address), each
with a comment giving the evidence (count, first/last seen, callers). Output is sorted and stable:
the same observations give the same file.

What is observed: requests a report-only proxy passed (tollgate run --report-only, or the Gateway
annotation tollgate.io/outbound-mode: report; logged as would_deny_registry) and requests an
enforcing proxy refused as not in the registry.

  --admin URL                 a running proxy's admin address (http://127.0.0.1:15000); repeatable:
                              the observations of several proxies are merged (counts summed)
  --access-log FILE|-         JSON access log (tollgate run's stdout); repeatable; - = stdin
  --all                       access log: every record that names a destination, not only the
                              registry refusals and would-be refusals
  --via-gateway NAME          also write the Gateway NAME, VirtualServices and DestinationRule that
                              send each HTTP/TLS host through the egress gateway (see 'gen egress')
  --gateway-selector k=v      the gateway's pod labels (default istio=egressgateway)
  --gateway-service NAME      the gateway's Service (default istio-egressgateway)
  -n, --namespace NS          namespace of the objects (default istio-system)
  --wildcard-threshold N      more than N subdomains of one domain -> one *.domain entry
                              (default 0: never)
  -o, --output FILE           write to FILE instead of stdout

The loop: run the gateway report-only, let traffic flow, suggest -o allow.yaml, review, then
run it enforcing with -f allow.yaml.`;

export async function suggestCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    admin: { type: 'string', multiple: true }, 'access-log': { type: 'string', multiple: true }, all: { type: 'boolean' },
    'via-gateway': { type: 'string' }, 'gateway-selector': { type: 'string' }, 'gateway-service': { type: 'string' },
    namespace: { type: 'string', short: 'n' }, 'wildcard-threshold': { type: 'string' }, output: { type: 'string', short: 'o' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SUGGEST_HELP);
    return 0;
  }
  const logs = values['access-log'] ?? [];
  const admins = values.admin ?? [];
  if ((admins.length === 0) === (logs.length === 0)) throw new UsageError('give either --admin URL or --access-log FILE (not both)');
  const threshold = values['wildcard-threshold'] ?? '0';
  if (!/^\d+$/.test(threshold)) throw new UsageError(`--wildcard-threshold "${threshold}" is not a number`);
  const options: SuggestOptions = {
    namespace: values.namespace ?? 'istio-system',
    wildcardThreshold: Number(threshold),
    ...(values['via-gateway'] !== undefined
      ? { viaGateway: { name: values['via-gateway'], selector: parseLabels(values['gateway-selector'] ?? 'istio=egressgateway'), service: values['gateway-service'] ?? 'istio-egressgateway' } }
      : {}),
  };
  let seen: Seen[];
  let source: string;
  if (admins.length > 0) {
    seen = (await Promise.all(admins.map(seenFromAdmin))).flat();
    source = `admin ${admins.join(', ')}`;
  } else {
    const problems: LogProblem[] = [];
    seen = [];
    for (const f of logs) {
      const text = f === '-' ? (io.readStdin?.() ?? readFileSync(0, 'utf8')) : readText(f);
      seen.push(...seenFromAccessLog(text, f === '-' ? '<stdin>' : f, values.all === true, problems));
    }
    for (const p of problems) io.err(`${p.file}:${p.line}: ${p.message}`);
    source = `access log ${logs.join(', ')}`;
  }
  const items = suggest(seen, options);
  if (items.length === 0) io.err(`suggest: nothing observed outside the registry (${source})`);
  const text = renderYaml(items, [`tollgate suggest: ${items.filter((i) => i.object.kind === 'ServiceEntry').length} ServiceEntry(ies) from what was observed`]);
  if (values.output) writeFileSync(values.output, text);
  else io.out(text.replace(/\n$/, ''));
  return 0;
}

function readText(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw new UsageError(`--access-log ${f}: ${(e as Error).message}`);
  }
}

interface ObservedJson {
  readonly observed: readonly { host: string; port: number; protocol: Seen['protocol']; count: number; firstSeen: string; lastSeen: string; namespaces: readonly string[] }[];
}

async function seenFromAdmin(base: string): Promise<Seen[]> {
  const url = new URL('/observed', base.includes('://') ? base : `http://${base}`);
  let body: ObservedJson;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    body = (await r.json()) as ObservedJson;
  } catch (e) {
    throw new UsageError(`--admin ${base}: cannot read ${url.href}: ${(e as Error).message}`);
  }
  return body.observed.filter((o) => o.port > 0).map((o) => ({ host: o.host, port: o.port, protocol: o.protocol, count: o.count, firstSeen: o.firstSeen, lastSeen: o.lastSeen, callers: o.namespaces }));
}
