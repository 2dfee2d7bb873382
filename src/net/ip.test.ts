import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import {
  DEFAULT_DENIED_CLASSES,
  SsrfGuard,
  cidrContains,
  cidrOf,
  classifyIp,
  describeIp,
  embeddedIpv4,
  formatCidr,
  formatIp,
  ipEquals,
  ipv4,
  ipv6FromWords,
  parseCidr,
  parseIp,
  parseLooseIpv4,
  type Cidr,
  type Ip,
  type IpClass,
} from './ip.js';
import { TollgateError } from '../shared/errors.js';

function ip(s: string): Ip {
  const r = parseIp(s);
  assert.ok(r, `expected ${s} to parse`);
  return r;
}

function cidr(s: string): Cidr {
  const r = parseCidr(s);
  assert.ok(r, `expected ${s} to parse as CIDR`);
  return r;
}

// Deterministic PRNG so failures reproduce.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

test('parseIp: canonical IPv4 only', () => {
  assert.deepEqual(parseIp('0.0.0.0'), { family: 4, value: 0 });
  assert.deepEqual(parseIp('127.0.0.1'), { family: 4, value: 0x7f000001 });
  assert.deepEqual(parseIp('255.255.255.255'), { family: 4, value: 0xffffffff });
  assert.deepEqual(parseIp('10.20.30.40'), ipv4(10, 20, 30, 40));
  for (const bad of [
    '', '1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '01.2.3.4', '1.2.3.04', '00.0.0.0',
    '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4.', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-4', '+1.2.3.4',
    '0x7f.0.0.1', '2130706433', '127.1', '1.2.3.4/8', '1.2.3.1000', 'a.b.c.d', '１.2.3.4',
  ]) {
    assert.equal(parseIp(bad), undefined, `should reject ${JSON.stringify(bad)}`);
  }
});

test('parseIp: IPv6 text forms', () => {
  const cases: [string, [number, number, number, number]][] = [
    ['::', [0, 0, 0, 0]],
    ['::1', [0, 0, 0, 1]],
    ['1::', [0x00010000, 0, 0, 0]],
    ['2001:db8::1', [0x20010db8, 0, 0, 1]],
    ['2001:DB8:0:0:0:0:0:1', [0x20010db8, 0, 0, 1]],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', [0x20010db8, 0, 0, 1]],
    ['fe80::1:2', [0xfe800000, 0, 0, 0x00010002]],
    ['1:2:3:4:5:6:7:8', [0x00010002, 0x00030004, 0x00050006, 0x00070008]],
    ['1:2:3:4:5:6:7::', [0x00010002, 0x00030004, 0x00050006, 0x00070000]],
    ['::2:3:4:5:6:7:8', [0x00000002, 0x00030004, 0x00050006, 0x00070008]],
    ['1:2:3::6:7:8', [0x00010002, 0x00030000, 0x00000006, 0x00070008]],
    ['::ffff:10.1.2.3', [0, 0, 0xffff, 0x0a010203]],
    ['::FFFF:10.1.2.3', [0, 0, 0xffff, 0x0a010203]],
    ['::10.1.2.3', [0, 0, 0, 0x0a010203]],
    ['64:ff9b::192.0.2.33', [0x0064ff9b, 0, 0, 0xc0000221]],
    ['1:2:3:4:5:6:1.2.3.4', [0x00010002, 0x00030004, 0x00050006, 0x01020304]],
    ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]],
  ];
  for (const [s, w] of cases) {
    assert.deepEqual(parseIp(s), ipv6FromWords(...w), s);
  }
  for (const bad of [
    ':', ':::', '1:', ':1', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8', '1:2:3:4::5:6:7:8', '12345::', '::g', 'fe80::1%eth0', 'fe80::1%25eth0',
    '[::1]', ' ::1', '::1 ', '::ffff:1.2.3', '::ffff:1.2.3.4.5', '::ffff:01.2.3.4', '::1.2.3.4:1',
    '1.2.3.4::', '1:2:3:4:5:6:7:1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '::ffff:256.1.1.1', '1:::2', '::-1',
  ]) {
    assert.equal(parseIp(bad), undefined, `should reject ${JSON.stringify(bad)}`);
  }
});

test('parseIp: random IPv6 addresses round-trip through every textual form', () => {
  const rand = rng(42);
  const hex = (g: number, pad: boolean, upper: boolean): string => {
    let s = g.toString(16);
    if (pad) s = s.padStart(4, '0');
    return upper ? s.toUpperCase() : s;
  };
  for (let iter = 0; iter < 3000; iter++) {
    // Bias towards zero groups so compression is exercised.
    const g: number[] = [];
    for (let k = 0; k < 8; k++) g.push(rand() < 0.4 ? 0 : Math.floor(rand() * 0x10000));
    const expected = ipv6FromWords((g[0]! << 16) | g[1]!, (g[2]! << 16) | g[3]!, (g[4]! << 16) | g[5]!, (g[6]! << 16) | g[7]!);
    const pad = rand() < 0.3;
    const upper = rand() < 0.3;
    const parts = g.map((x) => hex(x, pad, upper));
    const forms = [parts.join(':')];
    // Every legal :: placement: compress any run of >= 1 zero groups.
    for (let i = 0; i < 8; i++) {
      for (let j = i + 1; j <= 8; j++) {
        if (!g.slice(i, j).every((x) => x === 0)) break;
        forms.push(`${parts.slice(0, i).join(':')}::${parts.slice(j).join(':')}`);
      }
    }
    const dotted = `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
    forms.push(`${parts.slice(0, 6).join(':')}:${dotted}`);
    for (const f of forms) {
      assert.deepEqual(parseIp(f), expected, f);
    }
    // Canonical text is stable and equals the WHATWG serializer (RFC 5952) except for the
    // mixed notation RFC 5952 §5 recommends for IPv4-mapped addresses.
    const text = formatIp(expected);
    assert.deepEqual(parseIp(text), expected);
    const whatwg = new URL(`http://[${parts.join(':')}]/`).hostname.slice(1, -1);
    if (text.startsWith('::ffff:') && text.includes('.')) {
      assert.deepEqual(parseIp(whatwg), expected);
    } else {
      assert.equal(text, whatwg);
    }
  }
});

test('formatIp: RFC 5952 canonical text', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run wins
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80::ABCD', 'fe80::abcd'],
    ['::ffff:a01:203', '::ffff:10.1.2.3'],
    ['::10.1.2.3', '::a01:203'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['1:0:0:0:0:0:0:0', '1::'],
  ];
  for (const [input, out] of cases) assert.equal(formatIp(ip(input)), out, input);
  assert.equal(formatIp(ipv4(192, 0, 2, 1)), '192.0.2.1');
  assert.equal(formatIp({ family: 4, value: 0xffffffff }), '255.255.255.255');
});

test('ipEquals distinguishes families and values', () => {
  assert.ok(ipEquals(ip('10.0.0.1'), ipv4(10, 0, 0, 1)));
  assert.ok(!ipEquals(ip('10.0.0.1'), ip('10.0.0.2')));
  assert.ok(!ipEquals(ip('::a00:1'), ip('10.0.0.1')));
  assert.ok(ipEquals(ip('::1'), ip('0::0:1')));
  assert.ok(!ipEquals(ip('::1'), ip('::2')));
});

test('parseLooseIpv4: legacy spellings denote the address inet_aton would use', () => {
  const loop = 0x7f000001;
  const cases: [string, number][] = [
    ['2130706433', loop],
    ['0x7f000001', loop],
    ['0X7F000001', loop],
    ['017700000001', loop],
    ['0177.0.0.1', loop],
    ['0177.0.0.01', loop],
    ['127.1', loop],
    ['127.0.1', loop],
    ['0x7f.1', loop],
    ['0x7f.0x0.0x0.0x1', loop],
    ['127.0.0.1', loop],
    ['127.0.0.1.', loop],
    ['127.1.', loop],
    ['0000000000000000000000000000000000000000000000000000000000000000000000000177.1', loop],
    ['0x00000000000000000000000000000000000000000000000000000000000000000000007f000001', loop],
    ['169.254.43518', 0xa9fea9fe],
    ['0xa9fea9fe', 0xa9fea9fe],
    ['0', 0],
    ['0x', 0],
    ['0.0.0.0x', 0],
    ['4294967295', 0xffffffff],
    ['10.0xffffff', 0x0affffff],
    ['10.255.0xffff', 0x0affffff],
  ];
  for (const [s, v] of cases) {
    assert.deepEqual(parseLooseIpv4(s), { family: 4, value: v }, s);
  }
  for (const bad of [
    '', '.', '..', '1..1', '.1', '1.2.3.4.5', '1.2.3.4..', '08', '0xg', '09.1.1.1', '4294967296',
    '0x100000000', '256.0.0.1', '1.16777216', '1.256.65535', '1.1.65536', '1.2.3.256', 'localhost',
    '1.2.3.a', '-1', '+1', '1 ', ' 1', '1e3', '0b101', 'example.com', '127.0.0.1:80', '::1',
  ]) {
    assert.equal(parseLooseIpv4(bad), undefined, `should reject ${JSON.stringify(bad)}`);
  }
});

test('parseLooseIpv4 agrees with the WHATWG URL host parser on generated legacy forms', () => {
  const rand = rng(7);
  const spell = (v: number): string => {
    const r = rand();
    if (r < 0.33) return v.toString(10);
    if (r < 0.66) return `0x${v.toString(16)}`;
    return v === 0 ? '0' : `0${v.toString(8)}`;
  };
  for (let i = 0; i < 2000; i++) {
    const value = Math.floor(rand() * 0x100000000);
    const a = value >>> 24;
    const b = (value >>> 16) & 255;
    const c = (value >>> 8) & 255;
    const d = value & 255;
    const shape = i % 4;
    const s =
      shape === 0 ? spell(value)
      : shape === 1 ? `${spell(a)}.${spell(value & 0xffffff)}`
      : shape === 2 ? `${spell(a)}.${spell(b)}.${spell(value & 0xffff)}`
      : `${spell(a)}.${spell(b)}.${spell(c)}.${spell(d)}`;
    const ours = parseLooseIpv4(s);
    assert.deepEqual(ours, { family: 4, value }, s);
    assert.equal(new URL(`http://${s}/`).hostname, formatIp(ours), s);
  }
});

test('parseLooseIpv4 matches what getaddrinfo (Node dns.lookup) does with the same strings', async () => {
  // These never reach a DNS server: glibc's getaddrinfo answers numeric hosts via inet_aton.
  // This is the attack: a Host header the resolver turns into 127.0.0.1.
  for (const s of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '127.0.1', '0x7f.1']) {
    const resolved = await lookup(s, { family: 4 });
    const ours = parseLooseIpv4(s);
    assert.ok(ours, s);
    assert.equal(formatIp(ours), resolved.address, s);
  }
});

test('parseCidr: prefixes, bare addresses, host bits, strict mode', () => {
  const c = cidr('10.0.0.0/8');
  assert.equal(c.family, 4);
  assert.equal(c.prefix, 8);
  assert.equal(formatCidr(c), '10.0.0.0/8');
  assert.equal(formatCidr(cidr('10.1.2.3')), '10.1.2.3/32');
  assert.equal(formatCidr(cidr('2001:db8::1')), '2001:db8::1/128');
  assert.equal(formatCidr(cidr('2001:DB8:0:0::/32')), '2001:db8::/32');
  assert.equal(formatCidr(cidr('10.1.2.3/8')), '10.0.0.0/8', 'host bits cleared');
  assert.equal(formatCidr(cidr('2001:db8:ffff::1/33')), '2001:db8:8000::/33');
  assert.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(formatCidr(cidr('::/0')), '::/0');
  assert.equal(parseCidr('10.1.2.3/8', { strict: true }), undefined);
  assert.ok(parseCidr('10.0.0.0/8', { strict: true }));
  assert.equal(parseCidr('2001:db8::1/64', { strict: true }), undefined);
  for (const bad of [
    '', '/8', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/08', '10.0.0.0/8/8',
    '10.0.0.0/ 8', '10.0.0/8', '::/129', '::/1280', 'fe80::%eth0/64', 'example.com/8', '127.1/8',
  ]) {
    assert.equal(parseCidr(bad), undefined, `should reject ${JSON.stringify(bad)}`);
  }
  assert.throws(() => cidrOf(ip('10.0.0.0'), 33), (e: unknown) => e instanceof TollgateError && e.code === 'TG_NET_BAD_CIDR');
});

test('cidrContains: boundaries in both families, never across families', () => {
  const inside: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.0.0.0', true],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '9.255.255.255', false],
    ['172.16.0.0/12', '172.31.255.255', true],
    ['172.16.0.0/12', '172.32.0.0', false],
    ['192.168.1.7/32', '192.168.1.7', true],
    ['192.168.1.7/32', '192.168.1.8', false],
    ['128.0.0.0/1', '255.0.0.1', true],
    ['128.0.0.0/1', '127.255.255.255', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['0.0.0.0/0', '::1', false],
    ['::/0', '10.0.0.1', false],
    ['::/0', 'ffff::1', true],
    ['2001:db8::/32', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['2001:db8::/64', '2001:db8::ffff:ffff:ffff:ffff', true],
    ['2001:db8::/64', '2001:db8:0:1::', false],
    ['2001:db8::/65', '2001:db8::7fff:ffff:ffff:ffff', true],
    ['2001:db8::/65', '2001:db8::8000:0:0:0', false],
    ['2001:db8::1/128', '2001:db8::1', true],
    ['2001:db8::1/128', '2001:db8::2', false],
    ['::ffff:10.0.0.0/104', '::ffff:10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '10.9.9.9', false],
  ];
  for (const [c, a, want] of inside) assert.equal(cidrContains(cidr(c), ip(a)), want, `${c} ∋ ${a}`);
});

const V4_CLASSES: [string, IpClass][] = [
  ['0.0.0.0', 'unspecified'],
  ['0.0.0.1', 'reserved'],
  ['0.255.255.255', 'reserved'],
  ['1.0.0.0', 'public'],
  ['1.1.1.1', 'public'],
  ['8.8.8.8', 'public'],
  ['9.255.255.255', 'public'],
  ['10.0.0.0', 'private'],
  ['10.255.255.255', 'private'],
  ['11.0.0.0', 'public'],
  ['100.63.255.255', 'public'],
  ['100.64.0.0', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['100.128.0.0', 'public'],
  ['100.100.100.200', 'metadata'],
  ['126.255.255.255', 'public'],
  ['127.0.0.0', 'loopback'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['128.0.0.0', 'public'],
  ['168.63.129.16', 'metadata'],
  ['168.63.129.17', 'public'],
  ['169.253.255.255', 'public'],
  ['169.254.0.0', 'link-local'],
  ['169.254.169.253', 'link-local'],
  ['169.254.169.254', 'metadata'],
  ['169.254.169.255', 'link-local'],
  ['169.254.170.2', 'metadata'],
  ['169.254.255.255', 'link-local'],
  ['169.255.0.0', 'public'],
  ['172.15.255.255', 'public'],
  ['172.16.0.0', 'private'],
  ['172.31.255.255', 'private'],
  ['172.32.0.0', 'public'],
  ['192.0.0.0', 'reserved'],
  ['192.0.0.255', 'reserved'],
  ['192.0.1.0', 'public'],
  ['192.0.2.0', 'documentation'],
  ['192.0.2.255', 'documentation'],
  ['192.0.3.0', 'public'],
  ['192.88.99.1', 'reserved'],
  ['192.167.255.255', 'public'],
  ['192.168.0.0', 'private'],
  ['192.168.255.255', 'private'],
  ['192.169.0.0', 'public'],
  ['198.17.255.255', 'public'],
  ['198.18.0.0', 'documentation'],
  ['198.19.255.255', 'documentation'],
  ['198.20.0.0', 'public'],
  ['198.51.100.1', 'documentation'],
  ['198.51.101.1', 'public'],
  ['203.0.113.1', 'documentation'],
  ['203.0.114.1', 'public'],
  ['223.255.255.255', 'public'],
  ['224.0.0.0', 'multicast'],
  ['239.255.255.255', 'multicast'],
  ['240.0.0.0', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
];

const V6_CLASSES: [string, IpClass][] = [
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::2:0:0:1', 'reserved'],
  ['::1:0:0:0', 'reserved'],
  ['ff:ffff::', 'reserved'],
  ['100::1', 'reserved'],
  ['100::1:0:0:0:1', 'reserved'],
  ['1000::1', 'reserved'],
  ['1fff:ffff::', 'reserved'],
  ['2000::', 'public'],
  ['2606:4700:4700::1111', 'public'],
  ['2001:4860:4860::8888', 'public'],
  ['2001:db8::1', 'documentation'],
  ['2001:db9::1', 'public'],
  ['2001:2::1', 'documentation'],
  ['2001:2:1::1', 'public'],
  ['3fff::1', 'documentation'],
  ['3fff:fff::1', 'documentation'],
  ['3fff:1000::1', 'public'],
  ['3fff:ffff::1', 'public'],
  ['4000::1', 'reserved'],
  ['64:ff9b:1::1', 'private'],
  ['fbff:ffff::1', 'reserved'],
  ['fc00::', 'private'],
  ['fd12:3456::1', 'private'],
  ['fdff:ffff::1', 'private'],
  ['fd00:ec2::254', 'metadata'],
  ['fd00:ec2::253', 'private'],
  ['fe00::1', 'reserved'],
  ['fe80::', 'link-local'],
  ['fe80::1', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['fec0::1', 'private'],
  ['feff::1', 'private'],
  ['ff00::', 'multicast'],
  ['ff02::1', 'multicast'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'multicast'],
];

/** Teredo address for a client IPv4 (server 192.0.2.45, flags 0x8000, port 0xffff obfuscated). */
function teredo(client: string): string {
  const v = ip(client);
  assert.equal(v.family, 4);
  const x = (~v.value) >>> 0;
  return `2001:0:c000:22d:8000:0:${(x >>> 16).toString(16)}:${(x & 0xffff).toString(16)}`;
}

function sixToFour(v4: string): string {
  const v = ip(v4);
  assert.equal(v.family, 4);
  return `2002:${(v.value >>> 16).toString(16)}:${(v.value & 0xffff).toString(16)}:1::1`;
}

test('classifyIp: every IPv4 class with its boundaries', () => {
  for (const [a, cls] of V4_CLASSES) {
    assert.equal(classifyIp(ip(a)), cls, a);
    assert.equal(describeIp(ip(a)).cls, cls, a);
  }
});

test('classifyIp: IPv6 ranges', () => {
  for (const [a, cls] of V6_CLASSES) assert.equal(classifyIp(ip(a)), cls, a);
});

test('classifyIp: IPv6 forms that embed IPv4 take the embedded class', () => {
  const forms: [string, (v4: string) => string][] = [
    ['IPv4-mapped', (v) => `::ffff:${v}`],
    ['IPv4-translated', (v) => `::ffff:0:${v}`],
    ['IPv4-compatible', (v) => `::${v}`],
    ['NAT64', (v) => `64:ff9b::${v}`],
    ['6to4', sixToFour],
    ['Teredo', teredo],
  ];
  let checked = 0;
  for (const [via, make] of forms) {
    for (const [v4, cls] of V4_CLASSES) {
      // ::0.0.0.0 and ::0.0.0.1 are :: and ::1, not IPv4-compatible addresses.
      if (via === 'IPv4-compatible' && (v4 === '0.0.0.0' || v4 === '0.0.0.1')) continue;
      const text = make(v4);
      const addr = ip(text);
      assert.equal(classifyIp(addr), cls, `${text} (${via} of ${v4})`);
      const emb = embeddedIpv4(addr);
      assert.ok(emb, text);
      assert.equal(formatIp(emb.ipv4), v4, text);
      assert.equal(emb.via.name, via, text);
      const d = describeIp(addr);
      assert.equal(d.cls, cls);
      assert.ok(d.embedded && ipEquals(d.embedded.ipv4, emb.ipv4));
      checked++;
    }
  }
  assert.equal(checked, forms.length * V4_CLASSES.length - 2);
  // The ones the brief names explicitly.
  assert.equal(classifyIp(ip('::ffff:127.0.0.1')), 'loopback');
  assert.equal(classifyIp(ip('::ffff:7f00:1')), 'loopback');
  assert.equal(classifyIp(ip('64:ff9b::a9fe:a9fe')), 'metadata');
  assert.equal(classifyIp(ip('2002:c0a8:101::1')), 'private');
  // Wikipedia's Teredo example: client 192.0.2.45 (documentation), obfuscated as 3fff:fdd2.
  assert.equal(classifyIp(ip('2001:0:4136:e378:8000:63bf:3fff:fdd2')), 'documentation');
  assert.equal(formatIp(embeddedIpv4(ip('2001:0:4136:e378:8000:63bf:3fff:fdd2'))!.ipv4), '192.0.2.45');
  // Not embeddings.
  assert.equal(embeddedIpv4(ip('::')), undefined);
  assert.equal(embeddedIpv4(ip('::1')), undefined);
  assert.equal(embeddedIpv4(ip('2001:db8::1')), undefined);
  assert.equal(embeddedIpv4(ip('64:ff9b:0:1::1')), undefined);
  assert.equal(embeddedIpv4(ip('2001:1::1')), undefined);
  assert.equal(embeddedIpv4(ip('10.0.0.1')), undefined);
});

test('SsrfGuard: denies every default-denied class with a reason, allows public and documentation', () => {
  const guard = new SsrfGuard([]);
  const sample: Partial<Record<IpClass, string[]>> = {};
  for (const [a, cls] of [...V4_CLASSES, ...V6_CLASSES]) (sample[cls] ??= []).push(a);
  for (const cls of DEFAULT_DENIED_CLASSES) {
    const list = sample[cls];
    assert.ok(list && list.length > 0, `no sample for ${cls}`);
    for (const a of list) {
      const v = guard.check(ip(a));
      assert.equal(v.allowed, false, a);
      assert.ok(!v.allowed && v.reason.startsWith(`ssrf_denied: ${formatIp(ip(a))} is ${cls} (`), `${a}: ${JSON.stringify(v)}`);
    }
  }
  for (const cls of ['public', 'documentation'] as const) {
    for (const a of sample[cls] ?? []) assert.deepEqual(guard.check(ip(a)), { allowed: true }, a);
  }
  assert.deepEqual(guard.check(ip('10.1.2.3')), { allowed: false, reason: 'ssrf_denied: 10.1.2.3 is private (RFC 1918)' });
  assert.deepEqual(guard.check(ip('169.254.169.254')), {
    allowed: false,
    reason: 'ssrf_denied: 169.254.169.254 is metadata (cloud instance metadata (AWS, GCP, Azure, OpenStack))',
  });
  assert.deepEqual(guard.check(ip('::ffff:10.1.2.3')), {
    allowed: false,
    reason: 'ssrf_denied: ::ffff:10.1.2.3 is private (RFC 1918, via IPv4-mapped ::ffff:0:0/96 -> 10.1.2.3)',
  });
  assert.deepEqual(guard.check(ip('fd00:ec2::254')), {
    allowed: false,
    reason: 'ssrf_denied: fd00:ec2::254 is metadata (AWS instance metadata (IPv6))',
  });
});

test('SsrfGuard: embedded IPv4 forms of denied addresses are denied', () => {
  const guard = new SsrfGuard([]);
  for (const text of [
    '::ffff:127.0.0.1', '::127.0.0.1', '::ffff:0:127.0.0.1', '64:ff9b::127.0.0.1', sixToFour('127.0.0.1'), teredo('127.0.0.1'),
    '::ffff:169.254.169.254', '64:ff9b::169.254.169.254', sixToFour('169.254.169.254'), teredo('169.254.169.254'),
    '::ffff:10.0.0.1', '64:ff9b::192.168.1.1', sixToFour('172.16.0.1'), teredo('100.64.0.1'), '::ffff:0.0.0.0',
  ]) {
    const v = guard.check(ip(text));
    assert.equal(v.allowed, false, text);
    assert.ok(!v.allowed && v.reason.includes(', via '), v.allowed ? text : v.reason);
  }
  for (const text of ['::ffff:8.8.8.8', '64:ff9b::1.1.1.1', sixToFour('8.8.4.4'), teredo('9.9.9.9')]) {
    assert.equal(guard.check(ip(text)).allowed, true, text);
  }
});

test('SsrfGuard: allow CIDRs override exactly the addresses they cover', () => {
  const guard = new SsrfGuard([cidr('10.1.0.0/16'), cidr('169.254.169.254/32'), cidr('fd00:1::/32'), cidr('127.0.0.5')]);
  assert.equal(guard.check(ip('10.1.2.3')).allowed, true);
  assert.equal(guard.check(ip('10.1.255.255')).allowed, true);
  assert.equal(guard.check(ip('10.2.0.1')).allowed, false);
  assert.equal(guard.check(ip('10.0.255.255')).allowed, false);
  assert.equal(guard.check(ip('169.254.169.254')).allowed, true);
  assert.equal(guard.check(ip('169.254.169.253')).allowed, false);
  assert.equal(guard.check(ip('127.0.0.5')).allowed, true);
  assert.equal(guard.check(ip('127.0.0.1')).allowed, false);
  assert.equal(guard.check(ip('fd00:1:2::3')).allowed, true);
  assert.equal(guard.check(ip('fd00:2::3')).allowed, false);
  // An IPv4 allow covers the embedded forms of the same address ...
  assert.equal(guard.check(ip('::ffff:10.1.2.3')).allowed, true);
  assert.equal(guard.check(ip('64:ff9b::10.1.2.3')).allowed, true);
  assert.equal(guard.check(ip(sixToFour('10.1.2.3'))).allowed, true);
  assert.equal(guard.check(ip(teredo('10.1.2.3'))).allowed, true);
  // ... and nothing else.
  assert.equal(guard.check(ip('::ffff:10.2.0.1')).allowed, false);
  // An IPv6 allow covering an embedded form allows it too.
  const g6 = new SsrfGuard([cidr('::ffff:10.0.0.0/104')]);
  assert.equal(g6.check(ip('::ffff:10.3.3.3')).allowed, true);
  assert.equal(g6.check(ip('10.3.3.3')).allowed, false, 'an IPv6 CIDR does not allow plain IPv4');
  // A public address never needs an allow entry.
  assert.equal(new SsrfGuard([cidr('10.0.0.0/8')]).check(ip('8.8.8.8')).allowed, true);
});

test('SsrfGuard: deny set is configurable (documentation can be denied)', () => {
  const strict = new SsrfGuard([], { deny: [...DEFAULT_DENIED_CLASSES, 'documentation'] });
  const v = strict.check(ip('198.18.0.1'));
  assert.deepEqual(v, { allowed: false, reason: 'ssrf_denied: 198.18.0.1 is documentation (benchmarking, RFC 2544)' });
  assert.equal(strict.check(ip('2001:db8::1')).allowed, false);
  assert.equal(strict.check(ip('10.0.0.1')).allowed, false);
  const loose = new SsrfGuard([], { deny: ['metadata'] });
  assert.equal(loose.check(ip('10.0.0.1')).allowed, true);
  assert.equal(loose.check(ip('169.254.169.254')).allowed, false);
});

// Its speed is measured by bench/micro.mjs (npm run bench), never here.
test('SsrfGuard.check on the hot path: verdicts per address, no allocation for allowed ones', () => {
  const guard = new SsrfGuard([cidr('10.0.0.0/8'), cidr('fd00::/8')]);
  const addrs = ['93.184.216.34', '10.1.2.3', '2606:4700::1111', '::ffff:8.8.8.8', '127.0.0.1'].map(ip);
  assert.deepEqual(addrs.map((a) => guard.check(a).allowed), [true, true, true, true, false]);
  // Allowed verdicts are a shared constant: no allocation per check.
  assert.equal(guard.check(addrs[0]!), guard.check(addrs[2]!));
});
