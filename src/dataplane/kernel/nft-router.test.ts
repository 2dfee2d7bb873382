import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCounters, routerRuleset } from './nft-router.js';

const plan = {
  source: '198.51.100.99',
  gateway: '198.51.100.1',
  rules: [{ name: '80/tcp->203.0.113.25:80', port: 80, protocol: 'tcp' as const, destination: '203.0.113.25', destinationPort: 80, line: 30 }],
  fallback: { name: 'fallback->203.0.113.27', destination: '203.0.113.27', line: 34 },
};

describe('egress router nftables ruleset', () => {
  it('replaces the table atomically; DNAT per line, fallback without the admin port, SNAT on the router interface', () => {
    const text = routerRuleset({ plan, device: 'macvlan0', keepPorts: [15000] });
    const lines = text.split('\n').map((l) => l.trim());
    assert.deepEqual(lines.slice(0, 2), ['add table ip tollgate_router', 'delete table ip tollgate_router']);
    assert.ok(lines.includes('iifname != "macvlan0" tcp dport 80 counter dnat to 203.0.113.25:80 comment "80/tcp->203.0.113.25:80"'));
    assert.ok(lines.includes('iifname != "macvlan0" meta l4proto tcp tcp dport != { 15000 } counter dnat to 203.0.113.27 comment "fallback->203.0.113.27"'));
    assert.ok(lines.includes('oifname "macvlan0" counter snat to 198.51.100.99 comment "snat"'));
    // The per-line rules come before the fallback: nft evaluates in order, the first DNAT wins.
    assert.ok(text.indexOf('dport 80 ') < text.indexOf('fallback'));
  });

  it('reads counters back by comment, adding rules that share one', () => {
    const json = JSON.stringify({ nftables: [
      { metainfo: {} },
      { rule: { comment: 'fallback->203.0.113.27', expr: [{ match: {} }, { counter: { packets: 2, bytes: 120 } }] } },
      { rule: { comment: 'fallback->203.0.113.27', expr: [{ counter: { packets: 1, bytes: 60 } }] } },
      { rule: { expr: [{ counter: { packets: 9, bytes: 9 } }] } },
    ] });
    assert.deepEqual([...parseCounters(json)], [['fallback->203.0.113.27', { packets: 3, bytes: 180 }]]);
    assert.equal(parseCounters('not json').size, 0);
  });
});
