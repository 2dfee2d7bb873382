/**
 * Micro-benchmark: ns per request for evaluateAuthz with three policies of a typical egress
 * gateway (an ALLOW on ipBlocks + methods + paths, a DENY on paths + ports, a dry-run DENY on a
 * header). Not a test. Run after `tsc`:
 *
 *   node dist/src/dataplane/authz/evaluate.bench.js [requests]
 */
import type { AuthzPolicy, AuthzRule } from '../../snapshot/types.js';
import { evaluateAuthz, type AuthzRequest } from './evaluate.js';

const p = (name: string, action: AuthzPolicy['action'], rules: AuthzRule[], dryRun = false): AuthzPolicy => ({ name, namespace: 'edge', action, dryRun, rules });
const policies: AuthzPolicy[] = [
  p('allow-office', 'ALLOW', [{ from: [{ ipBlocks: ['10.20.0.0/16'] }], to: [{ methods: ['GET', 'HEAD'], paths: ['/public/*'] }] }, { to: [{ ports: ['5432'] }] }]),
  p('deny-secret', 'DENY', [{ to: [{ paths: ['/public/secret*'], ports: ['80'] }] }]),
  p('beta', 'DENY', [{ when: [{ key: 'request.headers[x-beta]', values: ['*'] }] }], true),
];
const headers: Record<string, string> = { 'user-agent': 'curl' };
const req: AuthzRequest = { sourceIp: '10.20.3.4', destinationPort: 80, http: { host: 'app.test', authority: 'app.test', method: 'GET', path: '/public/page', header: (n) => headers[n] } };

const n = Number(process.argv[2] ?? 1_000_000);
for (let i = 0; i < 50_000; i++) evaluateAuthz(policies, req);
const rounds: number[] = [];
for (let r = 0; r < 5; r++) {
  const t0 = process.hrtime.bigint();
  let allowed = 0;
  for (let i = 0; i < n; i++) if (evaluateAuthz(policies, req).allowed) allowed++;
  if (allowed !== n) throw new Error('the request must be allowed');
  rounds.push(Number(process.hrtime.bigint() - t0) / n);
}
rounds.sort((a, b) => a - b);
console.log(`evaluateAuthz, 3 policies: median ${rounds[2]!.toFixed(0)} ns/request, best ${rounds[0]!.toFixed(0)} ns (5 rounds of ${n})`);
