/**
 * The admin dashboard (`GET /`): one self-contained page (no CDN, no fonts, no network beyond this
 * admin address) that polls the admin API the proxy already serves — /stats/prometheus, /observed,
 * /clusters, /status and /suggest — and renders what leaves the cluster. Everything shown is read
 * from counters and tables that exist anyway; the page adds no per-request work to the proxy.
 *
 * "Latest" denials are the reasons whose counter moved most recently between two polls (the
 * counters have no timestamps; the browser keeps them).
 */

/** Fix hints by stable reason (docs/errors.md has the full table). */
const HINTS: Readonly<Record<string, string>> = {
  would_deny_registry: 'passed in report-only mode; add a ServiceEntry (tollgate suggest) before enforcing',
  proxy_not_in_registry: 'add a ServiceEntry declaring host and port (tollgate suggest / tollgate gen egress)',
  connect_not_in_registry: 'add a ServiceEntry declaring host and port 443/TLS (tollgate suggest / tollgate gen egress)',
  registry_only: 'the sidecar has no listener for this host: add a ServiceEntry (REGISTRY_ONLY)',
  connect_port_not_allowed: 'CONNECT is limited to --connect-ports / tollgate.io/explicit-proxy-connect-ports',
  proxy_tls_not_originated: 'use CONNECT for https://, or a DestinationRule with tls to originate TLS',
  ssrf_denied: 'the name resolved to a private, loopback or metadata address: annotate the ServiceEntry with tollgate.io/allow-private-addresses (private/CGNAT) or use --allow-cidr',
  route_not_found: 'bind a VirtualService for this host to the Gateway (tollgate gen egress)',
  cluster_not_found: 'the route names a host that is not in the registry: add its ServiceEntry',
  no_healthy_upstream: 'no endpoint answers: check DNS and the ServiceEntry endpoints (tollgate trace)',
  dns_resolution_failed: 'the name does not resolve from the gateway: check --dns-server and the name',
  upstream_connect_failed: 'the destination refused or timed out: check the port and the partner firewall (source address)',
  source_address_unavailable: 'the fixed source address is not on this host: fix --source-address / the annotation',
  connect_sni_mismatch: 'the TLS SNI differs from the CONNECT host (domain fronting): use the same name',
  rate_limited: 'the route token bucket is empty (tollgate.io/local-rate-limit)',
};

export function dashboardHtml(): string {
  return PAGE.replace('/*HINTS*/{}', JSON.stringify(HINTS));
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Tollgate</title>
<style>
  :root { --fg:#1d232a; --mute:#66717d; --line:#dde2e7; --bg:#f6f7f9; --ok:#1f7a3f; --warn:#9a6200; --bad:#b3261e; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
  header { display:flex; gap:24px; align-items:baseline; padding:12px 20px; background:#fff; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:18px; margin:0; }
  header span { color:var(--mute); }
  main { display:grid; grid-template-columns: 1fr 1fr; gap:16px; padding:16px 20px; }
  section { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; overflow:auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size:15px; margin:0 0 8px; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--mute); font-weight:600; font-size:12px; }
  td.n { text-align:right; font-variant-numeric: tabular-nums; }
  .ok { color:var(--ok); } .warn { color:var(--warn); } .bad { color:var(--bad); }
  .hint { color:var(--mute); font-size:12px; }
  code, pre { font:12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; }
  pre { background:var(--bg); border:1px solid var(--line); padding:8px; margin:6px 0 0; white-space:pre; }
  button { font:inherit; font-size:12px; padding:1px 8px; cursor:pointer; }
  .empty { color:var(--mute); font-style:italic; }
</style>
</head>
<body>
<header>
  <h1>Tollgate</h1>
  <span id="identity">proxy: …</span>
  <span>config <code id="version">…</code></span>
  <span id="sync">…</span>
  <span id="mode">…</span>
  <span id="updated"></span>
</header>
<main>
  <section class="wide"><h2>Egress flows</h2>
    <table id="flows"><thead><tr><th>caller namespace / workload</th><th>destination</th><th>protocol</th><th>requests / conns</th><th>errors</th><th>bytes</th><th>source address</th><th>in registry</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide"><h2>Would be denied (report-only) — suggested ServiceEntries</h2>
    <table id="wouldDeny"><thead><tr><th>destination</th><th>protocol</th><th>count</th><th>callers</th><th>last seen</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Latest denials</h2>
    <table id="denials"><thead><tr><th>reason</th><th>count</th><th>last change</th><th>fix</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Clusters and endpoints</h2>
    <table id="clusters"><thead><tr><th>cluster</th><th>type</th><th>endpoints</th><th>active</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
"use strict";
const HINTS = /*HINTS*/{};
const POLL_MS = 1000;
const denialSeen = new Map(); // reason -> {count, changedAt}
const openYaml = new Set();

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function fill(id, rows, cols, emptyText) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren();
  if (rows.length === 0) { body.append(el('tr', {}, el('td', { colspan: String(cols), class: 'empty' }, emptyText))); return; }
  for (const r of rows) body.append(r);
}
function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}
// Prometheus text format -> [{name, labels, value}] (the lines this page needs; no exemplars).
function parseProm(text) {
  const out = [];
  for (const line of text.split('\\n')) {
    if (line === '' || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)\\})?\\s+(\\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"/g;
    let l;
    while ((l = re.exec(m[2] || '')) !== null) labels[l[1]] = l[2].replace(/\\\\(.)/g, (_, c) => (c === 'n' ? '\\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
async function get(path, kind) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return kind === 'json' ? r.json() : r.text();
}

function renderFlows(samples, clusters, observed) {
  const flows = new Map();
  const key = (l) => [l.source_workload_namespace, l.source_workload, l.destination_service, l.request_protocol].join('|');
  const flow = (l) => {
    const k = key(l);
    let f = flows.get(k);
    if (!f) flows.set(k, (f = { ns: l.source_workload_namespace, wl: l.source_workload, dest: l.destination_service, proto: l.request_protocol, count: 0, errors: 0, bytes: 0 }));
    return f;
  };
  for (const s of samples) {
    const l = s.labels;
    if (s.name === 'istio_requests_total') {
      const f = flow(l);
      f.count += s.value;
      const code = Number(l.response_code);
      if (code === 0 || code >= 500 || (l.response_flags && l.response_flags !== '-')) f.errors += s.value;
    } else if (s.name === 'istio_request_bytes_sum' || s.name === 'istio_response_bytes_sum' || s.name === 'istio_tcp_sent_bytes_total' || s.name === 'istio_tcp_received_bytes_total') {
      flow(l).bytes += s.value;
    } else if (s.name === 'istio_tcp_connections_opened_total') {
      flow(l).count += s.value;
    }
  }
  const registered = new Set(clusters.filter((c) => !c.name.startsWith('report_only|')).map((c) => c.serviceHost));
  const wouldDeny = new Set(observed.map((o) => o.host));
  const sourceOf = (host) => { const c = clusters.find((x) => x.serviceHost === host && x.sourceAddress); return c ? c.sourceAddress : 'proxy default'; };
  const rows = [...flows.values()].sort((a, b) => b.count - a.count || (a.dest < b.dest ? -1 : 1)).map((f) => {
    // Client-chosen hosts are collapsed in the metrics: PassthroughCluster (passed, outside the
    // registry; the would-deny table below names them) and BlackHoleCluster (refused).
    const inRegistry = registered.has(f.dest) ? el('span', { class: 'ok' }, 'yes') : wouldDeny.has(f.dest) || (f.dest === 'PassthroughCluster' && observed.length > 0) ? el('span', { class: 'warn' }, 'no (report-only)') : el('span', { class: 'bad' }, f.dest === 'BlackHoleCluster' ? 'no (refused)' : 'no');
    return el('tr', { 'data-dest': f.dest }, el('td', {}, f.ns + ' / ' + f.wl), el('td', {}, el('code', {}, f.dest)), el('td', {}, f.proto), el('td', { class: 'n' }, f.count), el('td', { class: 'n' + (f.errors > 0 ? ' bad' : '') }, f.errors), el('td', { class: 'n' }, bytes(f.bytes)), el('td', {}, el('code', {}, sourceOf(f.dest))), el('td', {}, inRegistry));
  });
  fill('flows', rows, 8, 'no traffic yet');
}

function renderDenials(samples, now) {
  for (const s of samples) {
    if (s.name !== 'tollgate_denied_total') continue;
    const reason = s.labels.reason;
    const prev = denialSeen.get(reason);
    if (!prev || prev.count !== s.value) denialSeen.set(reason, { count: s.value, changedAt: now });
  }
  const rows = [...denialSeen.entries()].sort((a, b) => b[1].changedAt - a[1].changedAt || b[1].count - a[1].count).slice(0, 20).map(([reason, d]) =>
    el('tr', { 'data-reason': reason }, el('td', {}, el('code', { class: 'bad' }, reason)), el('td', { class: 'n' }, d.count), el('td', {}, new Date(d.changedAt).toLocaleTimeString()), el('td', { class: 'hint' }, HINTS[reason] || 'see docs/errors.md')));
  fill('denials', rows, 4, 'no denials');
}

async function renderWouldDeny(observed) {
  const rows = [];
  for (const o of observed) {
    const id = o.host + ':' + o.port;
    const button = el('button', { type: 'button' }, openYaml.has(id) ? 'hide YAML' : 'ServiceEntry');
    button.addEventListener('click', () => { if (openYaml.has(id)) openYaml.delete(id); else openYaml.add(id); tick(); });
    rows.push(el('tr', { 'data-host': o.host }, el('td', {}, el('code', {}, id)), el('td', {}, o.protocol), el('td', { class: 'n' }, o.count), el('td', {}, o.namespaces.join(', ')), el('td', {}, new Date(o.lastSeen).toLocaleTimeString()), el('td', {}, button)));
    if (openYaml.has(id)) {
      const yaml = await get('/suggest?host=' + encodeURIComponent(o.host) + '&port=' + o.port, 'text');
      rows.push(el('tr', {}, el('td', { colspan: '6' }, el('pre', { class: 'yaml' }, yaml))));
    }
  }
  fill('wouldDeny', rows, 6, 'nothing would be denied' );
}

function renderClusters(clusters) {
  const rows = clusters.slice(0, 200).map((c) => {
    const eps = c.endpoints.map((e) => e.address + ':' + e.port + (e.resolved ? ' -> ' + e.resolved.join(', ') : '')).join('; ') || (c.type === 'ORIGINAL_DST' ? 'the requested host' : 'none');
    const active = Object.values(c.active || {}).reduce((a, b) => a + b, 0);
    const ejected = c.outliers && c.outliers.ejected ? ' (' + c.outliers.ejected.length + ' ejected)' : '';
    return el('tr', {}, el('td', {}, el('code', {}, c.name)), el('td', {}, c.type), el('td', { class: c.endpoints.length === 0 && c.type !== 'ORIGINAL_DST' ? 'bad' : '' }, eps + ejected), el('td', { class: 'n' }, active));
  });
  fill('clusters', rows, 4, 'no clusters');
}

let running = false;
async function tick() {
  if (running) return;
  running = true;
  try {
    const [status, prom, observed, clusters] = await Promise.all([get('/status', 'json'), get('/stats/prometheus', 'text'), get('/observed', 'json'), get('/clusters', 'json')]);
    const p = status.proxy;
    document.getElementById('identity').textContent = p ? 'proxy: ' + p.role + ' ' + p.namespace + ' ' + Object.entries(p.labels).map(([k, v]) => k + '=' + v).join(',') : 'proxy: no config yet';
    document.getElementById('version').textContent = status.version || 'none';
    const sync = document.getElementById('sync');
    sync.textContent = status.ready ? 'ready (' + status.source + ')' : 'not ready';
    sync.className = status.ready ? 'ok' : 'bad';
    const mode = document.getElementById('mode');
    mode.textContent = status.outboundMode === 'report' ? 'REPORT-ONLY: destinations outside the registry pass and are logged' : 'enforcing the registry';
    mode.className = status.outboundMode === 'report' ? 'warn' : 'ok';
    const samples = parseProm(prom);
    renderFlows(samples, clusters.clusters, observed.observed);
    renderDenials(samples, Date.now());
    renderClusters(clusters.clusters);
    await renderWouldDeny(observed.observed);
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById('updated').textContent = 'admin API unreachable: ' + e.message;
  } finally {
    running = false;
  }
}
tick();
setInterval(tick, POLL_MS);
</script>
</body>
</html>
`;
