import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthzPolicy, AuthzRule } from '../../snapshot/types.js';
import { deniedDetail, evaluateAuthz, valueMatches, type AuthzRequest } from './evaluate.js';

const policy = (name: string, action: AuthzPolicy['action'], rules?: AuthzRule[], dryRun = false): AuthzPolicy => ({ name, namespace: 'shop', action, dryRun, ...(rules ? { rules } : {}) });

const http = (method: string, path: string, extra: Partial<AuthzRequest> = {}, headers: Record<string, string> = {}): AuthzRequest => ({
  sourceIp: '192.0.2.10',
  destinationPort: 8080,
  http: { host: 'api.example.com', authority: 'api.example.com:8080', method, path, header: (n) => headers[n] },
  ...extra,
});
const tcp = (sourceIp = '192.0.2.10', destinationPort = 5432): AuthzRequest => ({ sourceIp, destinationPort });

test('Istio string match: exact, prefix*, *suffix, * (any non-empty)', () => {
  assert.equal(valueMatches('/api', '/api'), true);
  assert.equal(valueMatches('/api', '/api/'), false);
  assert.equal(valueMatches('/api/*', '/api/v1'), true);
  assert.equal(valueMatches('/api/*', '/apiv1'), false);
  assert.equal(valueMatches('*.js', '/x/app.js'), true);
  assert.equal(valueMatches('*', ''), false);
  assert.equal(valueMatches('*', undefined), false);
});

test('no policy, or only DENY policies that do not match: allowed', () => {
  assert.equal(evaluateAuthz(undefined, http('GET', '/')).allowed, true);
  assert.equal(evaluateAuthz([policy('d', 'DENY', [{ to: [{ paths: ['/admin*'] }] }])], http('GET', '/')).allowed, true);
});

test('an ALLOW policy denies what it does not match; the matching rule index is reported', () => {
  const allow = policy('allow-get', 'ALLOW', [{ to: [{ methods: ['POST'] }] }, { to: [{ methods: ['GET'], paths: ['/public/*'] }] }]);
  const ok = evaluateAuthz([allow], http('GET', '/public/a'));
  assert.equal(ok.allowed, true);
  assert.equal(ok.allowedBy?.ruleIndex, 1);
  const no = evaluateAuthz([allow], http('GET', '/private'));
  assert.equal(no.allowed, false);
  assert.equal(no.deniedBy, undefined);
  assert.equal(deniedDetail(no), 'rbac_access_denied_matched_policy[none]');
});

test('DENY beats ALLOW; CUSTOM is evaluated first and fails closed', () => {
  const allowAll = policy('allow-all', 'ALLOW', [{}]);
  const deny = policy('deny-admin', 'DENY', [{ to: [{ notMethods: ['GET'] }] }, { to: [{ paths: ['/admin', '/admin/*'] }] }]);
  const v = evaluateAuthz([allowAll, deny], http('GET', '/admin/users'));
  assert.equal(v.allowed, false);
  assert.equal(deniedDetail(v), 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-admin]-rule[1]]');
  assert.equal(evaluateAuthz([allowAll, deny], http('GET', '/shop')).allowed, true);
  assert.equal(evaluateAuthz([allowAll, deny], http('DELETE', '/shop')).allowed, false);
  const custom = evaluateAuthz([allowAll, deny, policy('ext', 'CUSTOM', [{}])], http('GET', '/admin'));
  assert.equal(custom.deniedBy?.policy.name, 'ext');
});

test('an ALLOW policy without rules allows nothing; rules: [{}] allows everything', () => {
  assert.equal(evaluateAuthz([policy('nothing', 'ALLOW')], http('GET', '/')).allowed, false);
  assert.equal(evaluateAuthz([policy('nothing', 'ALLOW', [])], http('GET', '/')).allowed, false);
  assert.equal(evaluateAuthz([policy('all', 'ALLOW', [{}])], http('GET', '/')).allowed, true);
});

test('from: ipBlocks / notIpBlocks / remoteIpBlocks; IPv4-mapped peers are IPv4', () => {
  const p = policy('office', 'ALLOW', [{ from: [{ ipBlocks: ['192.0.2.0/24'], notIpBlocks: ['192.0.2.66'] }] }]);
  assert.equal(evaluateAuthz([p], http('GET', '/')).allowed, true);
  assert.equal(evaluateAuthz([p], http('GET', '/', { sourceIp: '::ffff:192.0.2.10' })).allowed, true);
  assert.equal(evaluateAuthz([p], http('GET', '/', { sourceIp: '192.0.2.66' })).allowed, false);
  assert.equal(evaluateAuthz([p], http('GET', '/', { sourceIp: '198.51.100.1' })).allowed, false);
  const remote = policy('r', 'DENY', [{ from: [{ remoteIpBlocks: ['203.0.113.0/24'] }] }]);
  assert.equal(evaluateAuthz([remote], http('GET', '/', { remoteIp: '203.0.113.9' })).allowed, false);
  assert.equal(evaluateAuthz([remote], http('GET', '/')).allowed, true, 'remote.ip defaults to the peer address');
});

test('to: hosts (case-insensitive, with or without port), ports, notPorts', () => {
  const p = policy('h', 'ALLOW', [{ to: [{ hosts: ['API.example.com'], ports: ['8080'] }] }]);
  assert.equal(evaluateAuthz([p], http('GET', '/')).allowed, true);
  assert.equal(evaluateAuthz([p], http('GET', '/', { destinationPort: 9090 })).allowed, false);
  const suffix = policy('s', 'ALLOW', [{ to: [{ hosts: ['*.example.com'], notPorts: ['9090'] }] }]);
  assert.equal(evaluateAuthz([suffix], http('GET', '/')).allowed, true);
});

test('when: request.headers, source.ip, destination.port, connection.sni, notValues', () => {
  const p = policy('w', 'ALLOW', [{ when: [{ key: 'request.headers[X-Team]', values: ['pay*'] }, { key: 'source.ip', notValues: ['192.0.2.99'] }, { key: 'destination.port', values: ['8080'] }] }]);
  assert.equal(evaluateAuthz([p], http('GET', '/', {}, { 'x-team': 'payments' })).allowed, true);
  assert.equal(evaluateAuthz([p], http('GET', '/', {}, { 'x-team': 'search' })).allowed, false);
  assert.equal(evaluateAuthz([p], http('GET', '/')).allowed, false, 'a missing header matches no value');
  assert.equal(evaluateAuthz([p], http('GET', '/', { sourceIp: '192.0.2.99' }, { 'x-team': 'payments' })).allowed, false);
  const sni = policy('sni', 'DENY', [{ when: [{ key: 'connection.sni', values: ['*.blocked.example'] }] }]);
  assert.equal(evaluateAuthz([sni], { ...tcp(), sni: 'a.blocked.example' }).allowed, false);
  assert.equal(evaluateAuthz([sni], { ...tcp(), sni: 'ok.example' }).allowed, true);
});

test('TCP: an ALLOW rule with HTTP-only fields never matches; a DENY rule ignores them (denies more)', () => {
  const allow = policy('a', 'ALLOW', [{ to: [{ methods: ['GET'], ports: ['5432'] }] }]);
  assert.equal(evaluateAuthz([allow], tcp()).allowed, false);
  const allowPort = policy('p', 'ALLOW', [{ to: [{ ports: ['5432'] }] }]);
  assert.equal(evaluateAuthz([allowPort], tcp()).allowed, true);
  const deny = policy('d', 'DENY', [{ to: [{ paths: ['/admin'], ports: ['5432'] }] }]);
  assert.equal(evaluateAuthz([deny], tcp()).allowed, false);
  assert.equal(evaluateAuthz([deny], tcp('192.0.2.10', 6379)).allowed, true);
});

test('no peer identity without mTLS: principals/namespaces never match, not* always do', () => {
  const allow = policy('a', 'ALLOW', [{ from: [{ principals: ['cluster.local/ns/a/sa/x'] }] }]);
  assert.equal(evaluateAuthz([allow], http('GET', '/')).allowed, false);
  const deny = policy('d', 'DENY', [{ from: [{ notNamespaces: ['a'] }] }]);
  assert.equal(evaluateAuthz([deny], http('GET', '/')).allowed, false);
  const denyNs = policy('d', 'DENY', [{ from: [{ namespaces: ['c'] }] }]);
  assert.equal(evaluateAuthz([denyNs], http('GET', '/')).allowed, true, 'this is why analyze reports namespaces as an error');
});

test('dry-run: never enforced, the would-be denial is reported; AUDIT marks without deciding', () => {
  const dryDeny = policy('dry', 'DENY', [{ to: [{ paths: ['/admin'] }] }], true);
  const v = evaluateAuthz([dryDeny], http('GET', '/admin'));
  assert.equal(v.allowed, true);
  assert.equal(v.dryRunDenied?.match?.policy.name, 'dry');
  const dryAllow = policy('dry-allow', 'ALLOW', [{ to: [{ paths: ['/ok'] }] }], true);
  const w = evaluateAuthz([dryAllow], http('GET', '/other'));
  assert.equal(w.allowed, true);
  assert.deepEqual(w.dryRunDenied, {});
  assert.equal(evaluateAuthz([dryAllow], http('GET', '/ok')).dryRunDenied, undefined);
  const audit = evaluateAuthz([policy('aud', 'AUDIT', [{}])], http('GET', '/'));
  assert.equal(audit.allowed, true);
  assert.equal(audit.audited[0]?.policy.name, 'aud');
});
