#!/usr/bin/env node
// Micro-benchmarks of hot-path functions, with regression guards.
//
//   node bench/micro.mjs [--rounds N]
//
// Speed belongs here, not in unit tests: a loaded machine makes a timed unit test fail for no
// reason. Each case runs `rounds` times and keeps the fastest round (the one least disturbed by
// other processes); the process exits 1 when that best round is slower per operation than the
// case's budget. Budgets are ~10x what a loaded 2-core machine measures: they catch a pathological
// (e.g. quadratic or linear-scan) regression, not a few percent.
import { once } from 'node:events';
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import { parseArgs } from 'node:util';
import { inspectClientHello } from '../dist/src/dataplane/listener/tls-inspector.js';
import { HostMatcher } from '../dist/src/net/hostname.js';
import { parseCidr, parseIp, SsrfGuard } from '../dist/src/net/ip.js';

const { values: opt } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, help: { type: 'boolean', short: 'h' } } });
if (opt.help) {
  console.log('usage: node bench/micro.mjs [--rounds N]   (build first: it measures dist/)');
  process.exit(0);
}
const ROUNDS = Math.max(1, Number(opt.rounds));

/** A real ClientHello, as Node's TLS client sends it (SNI and ALPN set). */
async function realClientHello() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = once(server, 'connection');
  const client = connect({ host: '127.0.0.1', port: server.address().port, servername: 'fast.example', ALPNProtocols: ['h2', 'http/1.1'] });
  client.on('error', () => {});
  const [sock] = await got;
  let buf = Buffer.alloc(0);
  for await (const chunk of sock) {
    buf = Buffer.concat([buf, chunk]);
    if (inspectClientHello(buf).state !== 'need-more') break;
  }
  client.destroy();
  sock.destroy();
  server.close();
  return buf;
}

function hostMatcherCase() {
  const entries = [];
  for (let i = 0; i < 10_000; i++) entries.push([i % 5 === 0 ? `*.d${i}.example` : `svc${i}.d${i}.example`, i]);
  const m = new HostMatcher(entries);
  const hosts = [];
  for (let i = 0; i < 1000; i++) hosts.push(i % 3 === 0 ? `deep.api.d${i * 10}.example` : i % 3 === 1 ? `svc${i}.d${i}.example` : `miss.d${i}.other`);
  return { m, hosts };
}

const hello = await realClientHello();
if (inspectClientHello(hello).state !== 'done') throw new Error('could not capture a ClientHello');
const hm = hostMatcherCase();
const guard = new SsrfGuard([parseCidr('10.0.0.0/8'), parseCidr('fd00::/8')]);
const addrs = ['93.184.216.34', '10.1.2.3', '2606:4700::1111', '::ffff:8.8.8.8', '127.0.0.1'].map(parseIp);

// name, operations per round, budget in ns per operation, body (returns a value so nothing is optimised away)
const CASES = [
  ['tls-inspector: whole ClientHello', 100_000, 200_000, (n) => {
    let done = 0;
    for (let i = 0; i < n; i++) if (inspectClientHello(hello).state === 'done') done++;
    return done;
  }],
  ['HostMatcher.lookup: 10,000 patterns', 200_000, 10_000, (n) => {
    let found = 0;
    for (let i = 0; i < n; i++) if (hm.m.lookup(hm.hosts[i % hm.hosts.length]) !== undefined) found++;
    return found;
  }],
  ['SsrfGuard.check', 500_000, 4_000, (n) => {
    let allowed = 0;
    for (let i = 0; i < n; i++) if (guard.check(addrs[i % addrs.length]).allowed) allowed++;
    return allowed;
  }],
];

let failed = 0;
console.log(`| case | ops/round | best ns/op (of ${ROUNDS}) | budget ns/op | |`);
console.log('|---|---:|---:|---:|---|');
for (const [name, ops, budget, body] of CASES) {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    body(ops);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / ops);
  }
  const ok = best <= budget;
  if (!ok) failed++;
  console.log(`| ${name} | ${ops} | ${best.toFixed(0)} | ${budget} | ${ok ? 'ok' : 'REGRESSION'} |`);
}
process.exit(failed === 0 ? 0 : 1);
