import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CAPTURE, iptablesRules, nftablesRules } from './rules.js';
import { parseInitArgs } from '../cli/init.js';

const SEED = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'sidecar', 'istio-init-nat-rules.txt');

/** Chain -> its rules in order: iptables evaluates rules per chain, so only that order matters. */
function byChain(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      continue;
    }
    const m = /^-([AN]) (\S+)(.*)$/.exec(line);
    assert.ok(m, `unexpected line ${line}`);
    const key = `${table}/${m[2]}`;
    const list = out.get(key) ?? [];
    if (m[1] === 'A') list.push(m[3]!.trim());
    out.set(key, list);
  }
  return out;
}

describe('capture rules (istio-iptables compatible)', () => {
  it("istio-init's flags give istio-init's REDIRECT rules, chain by chain", () => {
    const args = parseInitArgs(['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020']);
    const ours = iptablesRules(args.options);
    assert.deepEqual(byChain(ours), byChain(readFileSync(SEED, 'utf8')));
    // and line for line, as istio-iptables prints them
    assert.equal(ours, readFileSync(SEED, 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('\n'));
  });

  it('exclusions and inclusions land before the catch-all rules', () => {
    const t = byChain(iptablesRules({ ...DEFAULT_CAPTURE, excludeOutboundCidrs: ['192.0.2.0/24'], excludeOutboundPorts: [25], includeInboundPorts: ['9080'] }));
    const out = t.get('nat/ISTIO_OUTPUT')!;
    assert.equal(out[0], '-p tcp --dport 25 -j RETURN');
    assert.deepEqual(out.slice(-2), ['-d 192.0.2.0/24 -j RETURN', '-j ISTIO_REDIRECT']);
    assert.deepEqual(t.get('nat/ISTIO_INBOUND'), ['-p tcp --dport 15008 -j RETURN', '-p tcp --dport 9080 -j ISTIO_IN_REDIRECT']);
    const some = byChain(iptablesRules({ ...DEFAULT_CAPTURE, includeOutboundCidrs: ['203.0.113.0/24'] })).get('nat/ISTIO_OUTPUT')!;
    assert.deepEqual(some.slice(-2), ['-d 203.0.113.0/24 -j ISTIO_REDIRECT', '-j RETURN']);
  });

  it('TPROXY: inbound through mangle TPROXY to the inbound port with the mark; outbound still REDIRECT', () => {
    const t = byChain(iptablesRules({ ...DEFAULT_CAPTURE, mode: 'TPROXY' }));
    assert.deepEqual(t.get('mangle/ISTIO_TPROXY'), ['! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff']);
    assert.equal(t.get('nat/ISTIO_OUTPUT')?.at(-1), '-j ISTIO_REDIRECT');
    assert.equal(t.has('nat/PREROUTING'), false, 'inbound is not NATed in TPROXY mode');
    assert.match(nftablesRules({ ...DEFAULT_CAPTURE, mode: 'TPROXY' }), /tproxy to :15006/);
  });

  it('nftables: the same decisions in one table of its own', () => {
    const nft = nftablesRules(DEFAULT_CAPTURE);
    assert.match(nft, /^table ip tollgate_capture \{/);
    assert.match(nft, /tcp dport \{ 15008, 22, 15090, 15021, 15020 \} return/);
    assert.match(nft, /oifname "lo" ip saddr 127\.0\.0\.6\/32 return/);
    assert.match(nft, /meta skuid 1337 return/);
    assert.match(nft, /redirect to :15001/);
    assert.match(nft, /redirect to :15006/);
  });

  it('rejects what istio-iptables would reject', () => {
    assert.throws(() => parseInitArgs(['-m', 'DNAT']), /REDIRECT or TPROXY/);
    assert.throws(() => parseInitArgs(['-d', '70000']), /expected a port/);
    assert.throws(() => parseInitArgs(['-x', 'example.com']), /IPv4 CIDR/);
    assert.equal(parseInitArgs(['-u', '1000']).options.proxyGid, 1000, 'gid follows uid unless -g');
  });
});
