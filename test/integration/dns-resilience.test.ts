/**
 * DNS failures do not become outages: with dnsmasq stopped mid-run (by PID), a DNS-resolved host
 * keeps being served from its last good answer (counted), for a bounded time; "no such host"
 * answers are cached so a client cannot turn every request into a DNS query.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq } from '../helpers/dns.js';
import { httpGet, startHttpUpstream } from '../helpers/http.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';
import { startGateWithConfig } from '../helpers/tollgate.js';
import { requireTools } from '../helpers/tools.js';

const dnsEntry = (name: string, host: string, port: number) =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: q}\nspec: {hosts: [${host}], ports: [{number: ${port}, name: http, protocol: HTTP}], resolution: DNS}\n`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('resolver stopped: last good answer served (bounded by --dns-max-stale, counted); NXDOMAIN cached', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, 'dnsmasq')) return;
  const up = await startHttpUpstream('127.0.0.1');
  // nx.test with no address: dnsmasq answers NXDOMAIN for it.
  const dns = await startDnsmasq({ 'svc.test': '127.0.0.1', 'nx.test': '' }, 1);
  const yaml = docs(
    dnsEntry('svc', 'svc.test', up.port),
    dnsEntry('nx', 'nx.test', up.port),
    gateway('gw', 'q', 'q', '80/HTTP/svc.test,nx.test'),
    virtualService('svc', 'q', ['svc.test'], ['gw'], `http: [{route: [{destination: {host: svc.test, port: {number: ${up.port}}}}]}]`),
    virtualService('nx', 'q', ['nx.test'], ['gw'], `http: [{route: [{destination: {host: nx.test, port: {number: ${up.port}}}}]}]`),
  );
  const { gate, cfg } = await startGateWithConfig(yaml, ['--role', 'gateway', '-n', 'q', '-l', 'app=q', '--port-map', '80=0', '--dns-server', dns.server, '--allow-cidr', '127.0.0.0/8', '--dns-timeout', '500', '--dns-max-stale', '4']);
  t.after(async () => {
    await gate.stop();
    cfg.cleanup();
    await dns.stop();
    await up.close();
  });
  const port = gate.port(80);

  // Negative caching: two requests for a name that does not exist, one DNS query.
  assert.equal((await httpGet(port, '/', 'nx.test')).status, 503);
  assert.equal((await httpGet(port, '/', 'nx.test')).status, 503);
  assert.equal(gate.metric('tollgate_dns_queries_total', 'result="error"'), 1, 'the second NXDOMAIN came from the cache');

  assert.equal((await httpGet(port, '/', 'svc.test')).status, 200);
  const lastFresh = Date.now();
  await dns.stop();
  await sleep(1500); // the 1 s TTL has expired; the resolver is gone
  for (let i = 0; i < 5; i++) {
    const r = await httpGet(port, '/', 'svc.test');
    assert.equal(r.status, 200, `request ${i} with the resolver down: ${r.body}`);
    await sleep(300);
  }
  assert.ok(gate.metric('tollgate_dns_stale_answers_total') >= 5, 'stale answers are counted');

  // Bounded: 1 s TTL + 4 s stale after the last good answer, then DNS failures are failures again.
  await sleep(Math.max(0, lastFresh + 1000 + 4000 + 2500 - Date.now()));
  const late = await httpGet(port, '/', 'svc.test');
  assert.equal(late.status, 503, 'past --dns-max-stale the name no longer resolves');
});
