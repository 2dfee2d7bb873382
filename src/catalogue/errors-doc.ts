/**
 * docs/errors.md, rendered from the catalogue (catalogue.ts). Regenerate with
 * `npm run docs:errors`; test/catalogue.test.ts fails when the file differs.
 */
import { istioEquivalent } from '../analyze/istio-codes.js';
import { ANALYZER_CODES, ERROR_CODES, REASONS, RESPONSE_FLAGS, type CodeEntry, type ReasonArea } from './catalogue.js';

const AREAS: readonly { readonly area: ReasonArea; readonly title: string; readonly intro: string }[] = [
  { area: 'listener', title: 'Listeners', intro: 'Connections refused before any filter ran (src/dataplane/listener/).' },
  { area: 'upstream', title: 'Upstream (cluster manager)', intro: 'Choosing and connecting to an endpoint, for L4 tunnels and HTTP alike (src/dataplane/upstream/). HTTP answers 503, or 403 for BLOCKED.' },
  { area: 'tunnel', title: 'TCP tunnels and upgraded connections', intro: 'How an established tunnel (TCP proxy, CONNECT, WebSocket after 101) ended.' },
  { area: 'connect', title: 'Explicit proxy: CONNECT', intro: 'src/dataplane/tcp/explicit-proxy.ts; the access log and `tollgate_denied_total` carry the reason.' },
  {
    area: 'http',
    title: 'HTTP engine',
    intro:
      'One access-log line per request. Every local reply carries `x-tollgate-reason: <reason>`. Parse errors use the codec\'s `TG_HTTP_*` codes as the reason (docs/http-codec.md) with flag `DPE`, the codec\'s status, `Connection: close`, and nothing forwarded; the request head goes upstream only after the body bytes that arrived with it were checked, and a malformed body arriving later destroys the upstream connection (400 if no response started, else the downstream is reset).',
  },
  { area: 'explicit-proxy-http', title: 'Explicit proxy: plain HTTP (absolute-form requests)', intro: 'Answered by the HTTP engine; forwarding failures are the upstream ones above.' },
  { area: 'traffic-policy', title: 'Traffic policy (DestinationRule)', intro: 'Connection pool limits; outlier ejections show as `no_healthy_upstream`.' },
  {
    area: 'rate-limit-mirror',
    title: 'Local rate limit and mirroring',
    intro:
      'A mirrored copy has its own access-log line (`route_name` `<route>#mirror`, `authority` the `-shadow` Host); its failures never reach the client and are counted in `tollgate_http_mirror_requests_total`, not in `istio_requests_total` or `tollgate_denied_total`. Copies not sent are counted in `tollgate_http_mirror_skipped_total{reason}`: `body_too_large` (over 64 KiB), `overflow` (more than 1024 in flight), `abandoned` (the request body never completed).',
  },
  {
    area: 'authorization',
    title: 'Authorization (AuthorizationPolicy)',
    intro: 'src/dataplane/authz/; counted in `tollgate_rbac_total{policy,result}` (denied, dry_run_denied, audited); docs/authorization.md.',
  },
];

/** Istio's code for the same finding (analyze/istio-codes.ts keeps that mapping). */
function istioSuffix(code: string): string {
  const m = istioEquivalent(code);
  return m !== undefined ? ` (${m.code} ${m.name})` : '';
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function codeTable(list: readonly CodeEntry[]): string[] {
  return ['| code | severity | meaning | fix |', '|---|---|---|---|', ...list.map((c) => `| ${c.code}${istioSuffix(c.code)} | ${c.severity} | ${cell(c.meaning)} | ${cell(c.fix)} |`)];
}

export function renderErrorsDoc(): string {
  const out: string[] = [
    '# Error codes, response flags and reasons',
    '',
    '<!-- Generated from src/catalogue/catalogue.ts by `npm run docs:errors`; edit the catalogue, not this file. -->',
    '',
    'Every refusal or failure Tollgate reports has a stable code (`TG_...`), a stable snake_case',
    '`tollgate_reason`, and an Envoy response flag. Codes and reasons do not change meaning once',
    'released. Every refused or failed connection or request gets one access-log line with',
    '`response_flags` and `tollgate_reason` (details go to `response_code_details` /',
    '`connection_termination_details`), and `tollgate_denied_total{reason}` counts it.',
    '',
    '## Response flags',
    '',
    'Envoy\'s flags keep Envoy\'s meaning; `BLOCKED` and `NL` are Tollgate\'s.',
    '',
    '| flag | meaning | fix |',
    '|---|---|---|',
    ...RESPONSE_FLAGS.map((f) => `| ${f.flag} | ${cell(f.meaning)} | ${cell(f.fix)} |`),
  ];
  for (const a of AREAS) {
    out.push('', `## Reasons: ${a.title}`, '', a.intro, '', '| reason | flag | status | meaning | fix |', '|---|---|---|---|---|');
    for (const r of REASONS.filter((x) => x.area === a.area)) out.push(`| ${r.reason} | ${r.flag} | ${r.status === '' ? '-' : cell(r.status)} | ${cell(r.meaning)} | ${cell(r.fix)} |`);
  }
  out.push('', '## Analyzer codes (`tollgate analyze`)', '', 'docs/analyze-and-trace.md explains how to read a report.', '', ...codeTable(ANALYZER_CODES));
  out.push('', '## Config, runtime and CLI errors', '', 'Raised by the config loader (with file:line), the runtime when a snapshot is applied, and `tollgate run`.', '', ...codeTable(ERROR_CODES));
  return out.join('\n') + '\n';
}
