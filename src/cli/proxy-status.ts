import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { LeaseState } from '../controlplane/leases.js';
import type { LeftOutObject } from '../controlplane/config-source.js';
import { request as tlsRequest } from 'node:https';
import type { SessionView } from '../controlplane/sessions.js';
import type { Snapshot } from '../snapshot/types.js';
import { parseHostPort } from './control-plane.js';
import { parse, UsageError, type Io } from './common.js';
import { outputFormat, render } from './output.js';

const VIEW_AUTH_HELP = `
  --control-plane-ca FILE   CA (PEM) that signed the control plane's certificate
  --token-file FILE         a bearer token the control plane accepts (a --bootstrap-tokens entry,
                            or a service-account token in Kubernetes mode)`;

export const PROXY_STATUS_HELP = `Usage: tollgate proxy-status [--control-plane HOST:PORT] --control-plane-ca FILE --token-file FILE [-o text|json|yaml]

One row per proxy connected to the control plane: name, role, namespace, the version it runs,
SYNCED (acknowledged the latest push) / STALE (push not acknowledged yet) / NACKED (refused it,
with the error) / NOT_SENT, time since the last push, and the last error. Below the table: the
objects the control plane left out of the config because they are invalid (each with its error
and fix), and whether the newest config was rejected as a whole.
${VIEW_AUTH_HELP}`;

export const PROXY_CONFIG_HELP = `Usage: tollgate proxy-config listeners|routes|clusters|endpoints|all PROXY [--control-plane HOST:PORT --control-plane-ca FILE --token-file FILE | --admin HOST:PORT] [-o text|json|yaml]

The snapshot a proxy runs (secret values redacted), read from the control plane (PROXY = a key
from proxy-status, or the proxy's name) or straight from the proxy's admin address (/config_dump).
${VIEW_AUTH_HELP}`;

/** TLS trust and credential for the control plane's views. */
export interface ViewAuth {
  readonly ca: Buffer;
  readonly token: string;
}

const VIEW_OPTIONS = { 'control-plane-ca': { type: 'string' }, 'token-file': { type: 'string' } } as const;

function viewAuth(values: { 'control-plane-ca'?: string | undefined; 'token-file'?: string | undefined }): ViewAuth {
  const caFile = values['control-plane-ca'];
  const tokenFile = values['token-file'];
  if (caFile === undefined || tokenFile === undefined) throw new UsageError('the control plane serves TLS and requires a token: give --control-plane-ca FILE and --token-file FILE');
  try {
    return { ca: readFileSync(caFile), token: readFileSync(tokenFile, 'utf8').trim() };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function getJson<T>(host: string, port: number, path: string, auth?: ViewAuth): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const opts = { host, port, path, method: 'GET', timeout: 10_000 };
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    };
    const req = auth ? tlsRequest({ ...opts, ca: auth.ca, headers: { authorization: `Bearer ${auth.token}` } }, onResponse) : request(opts, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${port} in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A connection failure (refused, timed out, unresolvable) as one line naming the address, instead of a stack trace. */
function unreachable(err: unknown, host: string, port: number, what: string): string | undefined {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code !== 'string' && !message.startsWith('no answer from')) return undefined;
  return `cannot reach the ${what} at ${host}:${port} (${typeof code === 'string' ? code : message})`;
}

async function fetchOrExplain<T>(io: Io, command: string, host: string, port: number, what: string, get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    const line = unreachable(err, host, port, what);
    if (line === undefined) throw err;
    io.err(`tollgate ${command}: ${line}; is it running? (--${what === 'control plane' ? 'control-plane' : 'admin'} HOST:PORT)`);
    return undefined;
  }
}

function ago(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const s = Math.round((Date.now() - ms) / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

export async function proxyStatusCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, { 'control-plane': { type: 'string' }, ...VIEW_OPTIONS, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(PROXY_STATUS_HELP);
    return 0;
  }
  const format = outputFormat(values.output, 'text');
  const { host, port } = parseHostPort(values['control-plane'] ?? '127.0.0.1:15010', '--control-plane');
  const auth = viewAuth(values);
  const fetched = await fetchOrExplain(io, 'proxy-status', host, port, 'control plane', () => Promise.all([
    getJson<SessionView[]>(host, port, '/v1/proxies', auth),
    getJson<{ rejected?: { errors: string[] }; leftOut?: LeftOutObject[] }>(host, port, '/v1/config', auth),
    getJson<LeaseState[]>(host, port, '/v1/leases', auth),
  ]));
  if (!fetched) return 1;
  const [proxies, config, leases] = fetched;
  if (proxies.status !== 200) {
    io.err(`proxy-status: control plane answered ${proxies.status}: ${(proxies.body as { error?: string }).error ?? ''}`);
    return 1;
  }
  const leaseList = Array.isArray(leases.body) ? leases.body : [];
  if (format !== 'text') {
    io.out(render({ proxies: proxies.body, config: config.body, leases: leaseList }, format));
    return 0;
  }
  const rows = [['NAME', 'ROLE', 'NAMESPACE', 'VERSION', 'STATUS', 'PUSHED', 'LAST ERROR']];
  for (const p of proxies.body) {
    const labels = Object.entries(p.node.labels).map(([k, v]) => `${k}=${v}`).join(',');
    rows.push([p.node.name || labels || p.id, p.node.role, p.node.namespace, p.ackedVersion ?? '-', p.state, ago(p.lastPushAt), p.lastError ?? (p.warnings !== undefined && p.warnings.length > 0 ? `warning: ${p.warnings.join('; ')}` : '')]);
  }
  for (const line of table(rows)) io.out(line);
  if (leaseList.length > 0) {
    // Floating source addresses: who holds each one, since when, and the last hand-over.
    io.out('');
    const now = Date.now();
    const lrows = [['SOURCE ADDRESS LEASE', 'HOLDER', 'SINCE', 'RENEWED', 'FAILOVERS', 'PREVIOUS HOLDER']];
    for (const l of leaseList) {
      const live = l.holder !== '' && now - l.renewedAt < l.durationMs;
      lrows.push([l.name, live ? l.holder : `(none${l.holder ? `: ${l.holder} expired` : ''})`, ago(l.acquiredAt), ago(l.renewedAt), String(l.transitions), l.previousHolder ?? '-']);
    }
    for (const line of table(lrows)) io.out(line);
  }
  if (config.body.leftOut?.length) {
    io.out('');
    io.out(`${config.body.leftOut.length} invalid object(s) LEFT OUT of the config; everything else is served:`);
    for (const o of config.body.leftOut) {
      io.out(`  ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name} (${o.source})`);
      for (const e of o.errors) for (const line of e.split('\n')) io.out(`    ${line}`);
    }
  }
  if (config.body.rejected) {
    io.out('');
    io.out('The newest config was REJECTED; proxies keep the last good one:');
    for (const e of config.body.rejected.errors) io.out(`  ${e}`);
  }
  return 0;
}

const SECTIONS = ['listeners', 'routes', 'clusters', 'endpoints', 'all'] as const;

export async function proxyConfigCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { 'control-plane': { type: 'string' }, ...VIEW_OPTIONS, admin: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    io.out(PROXY_CONFIG_HELP);
    return 0;
  }
  const [section, proxy] = positionals;
  if (!section || !(SECTIONS as readonly string[]).includes(section)) throw new UsageError(`first argument must be one of ${SECTIONS.join(', ')}`);
  const format = outputFormat(values.output, 'text');
  let snapshot: Snapshot;
  if (values.admin) {
    const { host, port } = parseHostPort(values.admin, '--admin');
    // The admin's /config_dump wraps the snapshot with the bound addresses.
    const got = await fetchOrExplain(io, 'proxy-config', host, port, 'admin', () => getJson<Snapshot | { snapshot: Snapshot }>(host, port, '/config_dump'));
    if (!got) return 1;
    const dump = got.body;
    snapshot = 'snapshot' in dump ? dump.snapshot : dump;
  } else {
    if (!proxy) throw new UsageError('name the proxy (a key from proxy-status), or use --admin HOST:PORT');
    const { host, port } = parseHostPort(values['control-plane'] ?? '127.0.0.1:15010', '--control-plane');
    const auth = viewAuth(values);
    const r = await fetchOrExplain(io, 'proxy-config', host, port, 'control plane', () => getJson<Snapshot & { error?: string }>(host, port, `/v1/proxies/${encodeURIComponent(proxy)}/snapshot`, auth));
    if (!r) return 1;
    if (r.status !== 200) {
      io.err(`proxy-config: ${r.body.error ?? `control plane answered ${r.status}`}`);
      return 1;
    }
    snapshot = r.body;
  }
  const picked = section === 'all' ? snapshot : { version: snapshot.version, [section]: snapshot[section as Exclude<(typeof SECTIONS)[number], 'all'>] };
  if (format !== 'text') {
    io.out(render(picked, format));
    return 0;
  }
  io.out(`snapshot ${snapshot.version} (${snapshot.proxy.role} ${snapshot.proxy.namespace})`);
  if (section === 'listeners' || section === 'all') for (const line of table([['LISTENER', 'ADDRESS', 'CHAINS'], ...snapshot.listeners.map((l) => [l.name, `${l.address}:${l.port}`, l.filterChains.map((c) => `${c.name}(${c.filter.type})`).join(' ') || (l.defaultFilterChain ? `default:${l.defaultFilterChain.name}` : '-')])])) io.out(line);
  if (section === 'routes' || section === 'all') for (const line of table([['ROUTE TABLE', 'VIRTUAL HOST', 'ROUTES'], ...snapshot.routes.flatMap((r) => r.virtualHosts.map((v) => [r.name, v.name, v.routes.map((x) => x.name).join(' ')]))])) io.out(line);
  if (section === 'clusters' || section === 'all') for (const line of table([['CLUSTER', 'TYPE', 'SOURCE ADDRESS', 'TLS'], ...snapshot.clusters.map((c) => [c.name, c.type, c.sourceAddress ?? (c.sourceAddressPool ? `pool ${c.sourceAddressPool.join(',') || '(none here)'}` : '-'), c.tls ? `${c.tls.mode}${c.tls.sni ? ' sni ' + c.tls.sni : ''}` : '-'])])) io.out(line);
  if (section === 'endpoints' || section === 'all') for (const line of table([['CLUSTER', 'ENDPOINTS'], ...snapshot.endpoints.map((e) => [e.clusterName, e.endpoints.map((x) => `${x.address}:${x.port}`).join(', ') || '-'])])) io.out(line);
  return 0;
}
