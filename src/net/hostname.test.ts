import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HostMatcher,
  hostMatches,
  isWildcardPattern,
  normalizeHost,
  normalizeHostPattern,
  patternIntersection,
  patternsOverlap,
  splitHostPort,
} from './hostname.js';
import { formatIp } from './ip.js';
import { TollgateError } from '../shared/errors.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

test('splitHostPort: accepted forms', () => {
  const ok: [string, string, number, boolean][] = [
    ['example.com', 'example.com', 443, false],
    ['example.com:8080', 'example.com', 8080, false],
    ['Example.COM.:80', 'Example.COM.', 80, false],
    ['10.0.0.1:1', '10.0.0.1', 1, false],
    ['10.0.0.1:65535', '10.0.0.1', 65535, false],
    ['[::1]', '::1', 443, true],
    ['[::1]:8443', '::1', 8443, true],
    ['[2001:DB8::1]:80', '2001:DB8::1', 80, true],
    ['[::ffff:10.0.0.1]:80', '::ffff:10.0.0.1', 80, true],
    ['bücher.de:443', 'bücher.de', 443, false],
  ];
  for (const [a, host, port, bracketed] of ok) {
    assert.deepEqual(splitHostPort(a, 443), { ok: true, host, port, bracketed }, a);
  }
});

test('splitHostPort: strict rejections with stable codes', () => {
  const bad: [string, string][] = [
    ['', 'TG_HOST_EMPTY'],
    [':80', 'TG_HOST_EMPTY'],
    ['example.com:', 'TG_HOST_BAD_PORT'],
    ['example.com:0', 'TG_HOST_BAD_PORT'],
    ['example.com:65536', 'TG_HOST_BAD_PORT'],
    ['example.com:080', 'TG_HOST_BAD_PORT'],
    ['example.com:+80', 'TG_HOST_BAD_PORT'],
    ['example.com:8a', 'TG_HOST_BAD_PORT'],
    ['example.com:123456', 'TG_HOST_BAD_PORT'],
    ['example.com:0x50', 'TG_HOST_BAD_PORT'],
    ['user@example.com', 'TG_HOST_USERINFO'],
    ['user:pw@example.com:80', 'TG_HOST_USERINFO'],
    ['evil.com@good.com', 'TG_HOST_USERINFO'],
    ['exa mple.com', 'TG_HOST_INVALID_CHAR'],
    [' example.com', 'TG_HOST_INVALID_CHAR'],
    ['example.com ', 'TG_HOST_INVALID_CHAR'],
    ['example.com\t', 'TG_HOST_INVALID_CHAR'],
    ['example.com\r\n', 'TG_HOST_INVALID_CHAR'],
    ['example.com\0', 'TG_HOST_INVALID_CHAR'],
    ['example.com/path', 'TG_HOST_INVALID_CHAR'],
    ['example.com\\x', 'TG_HOST_INVALID_CHAR'],
    ['example.com?x', 'TG_HOST_INVALID_CHAR'],
    ['example.com#x', 'TG_HOST_INVALID_CHAR'],
    ['ex%61mple.com', 'TG_HOST_INVALID_CHAR'],
    ['::1', 'TG_HOST_BAD_IPV6'],
    ['2001:db8::1:443', 'TG_HOST_BAD_IPV6'],
    ['[::1', 'TG_HOST_BAD_IPV6'],
    ['[example.com]:80', 'TG_HOST_BAD_IPV6'],
    ['[10.0.0.1]:80', 'TG_HOST_BAD_IPV6'],
    ['[fe80::1%25eth0]:80', 'TG_HOST_INVALID_CHAR'],
    ['[::1]80', 'TG_HOST_INVALID_CHAR'],
    ['[::1]:', 'TG_HOST_BAD_PORT'],
    ['[::1]:0', 'TG_HOST_BAD_PORT'],
    ['a]b:80', 'TG_HOST_INVALID_CHAR'],
    ['a[b', 'TG_HOST_INVALID_CHAR'],
  ];
  for (const [a, code] of bad) {
    const r = splitHostPort(a, 443);
    assert.equal(r.ok, false, JSON.stringify(a));
    assert.equal(!r.ok && r.code, code, JSON.stringify(a));
  }
});

test('normalizeHost: case, one trailing dot, underscore', () => {
  const ok: [string, string][] = [
    ['example.com', 'example.com'],
    ['EXAMPLE.com', 'example.com'],
    ['Example.COM.', 'example.com'],
    ['localhost', 'localhost'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['_dmarc.example.com', '_dmarc.example.com'],
    ['build_server.corp', 'build_server.corp'],
    ['xn--bcher-kva.de', 'xn--bcher-kva.de'],
    ['0x7f.example.com', '0x7f.example.com'],
    ['1.2.3.example', '1.2.3.example'],
    ['123abc.com', '123abc.com'],
    ['a.b1', 'a.b1'],
  ];
  for (const [input, host] of ok) {
    assert.deepEqual(normalizeHost(input), { ok: true, host, converted: false }, input);
  }
});

test('normalizeHost: IDN converted to punycode and reported', () => {
  const cases: [string, string][] = [
    ['bücher.de', 'xn--bcher-kva.de'],
    ['BÜCHER.de.', 'xn--bcher-kva.de'],
    ['例子.测试', 'xn--fsqu00a.xn--0zwm56d'],
    ['ＥＸＡＭＰＬＥ．com', 'example.com'], // fullwidth letters and dot are IDNA-mapped
    ['exa\u00admple.com', 'example.com'], // soft hyphen is mapped away
    ['a\u3002b.com', 'a.b.com'], // ideographic full stop
  ];
  for (const [input, host] of cases) {
    assert.deepEqual(normalizeHost(input), { ok: true, host, converted: true }, input);
  }
  for (const bad of ['a\u200db.com', 'ü\u0000.de', '\u{1F600}\u200d.com']) {
    const r = normalizeHost(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
  }
  // Delimiters never reach domainToASCII (which would truncate 'ü/evil.com' to the part before '/').
  for (const bad of ['ü/evil.com', 'ü@evil.com', 'ü:80', 'ü evil.com', 'ü%2e.com', 'ü?.com', 'ü#.com', 'ü\\.com']) {
    const r = normalizeHost(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
  }
});

test('normalizeHost: IP literals in every spelling are detected, never treated as names', () => {
  const cases: [string, string, boolean][] = [
    ['127.0.0.1', '127.0.0.1', false],
    ['127.0.0.1.', '127.0.0.1', false],
    ['2130706433', '127.0.0.1', true],
    ['0x7f000001', '127.0.0.1', true],
    ['0X7F000001', '127.0.0.1', true],
    ['0177.0.0.1', '127.0.0.1', true],
    ['127.1', '127.0.0.1', true],
    ['127.0.1', '127.0.0.1', true],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254', true],
    ['169.254.43518', '169.254.169.254', true],
    ['10.1.2.3', '10.1.2.3', false],
  ];
  for (const [input, host, legacy] of cases) {
    const r = normalizeHost(input);
    assert.ok(r.ok && r.ip !== undefined, input);
    assert.equal(r.host, host, input);
    assert.equal(formatIp(r.ip), host, input);
    assert.equal(r.legacyIp, legacy, input);
    assert.equal(r.converted, false, input);
  }
  // Fullwidth digits become an IP only after IDNA mapping: still detected.
  const fw = normalizeHost('１２７.０.０.１');
  assert.ok(fw.ok && fw.ip !== undefined && fw.converted);
  assert.equal(fw.host, '127.0.0.1');
  // IPv6, bracketed or not.
  for (const input of ['::1', '[::1]', '[0:0::1]', '::FFFF:127.0.0.1']) {
    const r = normalizeHost(input);
    assert.ok(r.ok && r.ip?.family === 6, input);
  }
  assert.equal((normalizeHost('[::FFFF:7f00:1]') as { host: string }).host, '::ffff:127.0.0.1');
  for (const bad of ['fe80::1%eth0', '[::1', '::g', '1::2::3']) {
    const r = normalizeHost(bad);
    assert.ok(!r.ok && r.code === 'TG_HOST_BAD_IPV6', bad);
  }
});

test('normalizeHost: invalid names with stable codes', () => {
  const l63 = 'a'.repeat(63);
  const name253 = [l63, l63, l63, 'a'.repeat(61)].join('.');
  assert.equal(name253.length, 253);
  assert.deepEqual(normalizeHost(name253), { ok: true, host: name253, converted: false });
  assert.deepEqual(normalizeHost(`${name253}.`), { ok: true, host: name253, converted: false });
  assert.deepEqual(normalizeHost(`${l63}.com`), { ok: true, host: `${l63}.com`, converted: false });
  const bad: [string, string][] = [
    ['', 'TG_HOST_EMPTY'],
    ['.', 'TG_HOST_EMPTY'],
    ['example.com..', 'TG_HOST_EMPTY_LABEL'],
    ['.example.com', 'TG_HOST_EMPTY_LABEL'],
    ['a..b', 'TG_HOST_EMPTY_LABEL'],
    [`${'a'.repeat(64)}.com`, 'TG_HOST_LABEL_TOO_LONG'],
    [`${name253}a`, 'TG_HOST_TOO_LONG'],
    ['x'.repeat(2000), 'TG_HOST_TOO_LONG'],
    ['-a.com', 'TG_HOST_BAD_HYPHEN'],
    ['a-.com', 'TG_HOST_BAD_HYPHEN'],
    ['a.-com', 'TG_HOST_BAD_HYPHEN'],
    ['exa mple.com', 'TG_HOST_INVALID_CHAR'],
    ['example.com:80', 'TG_HOST_BAD_IPV6'],
    ['*.example.com', 'TG_HOST_INVALID_CHAR'],
    ['a/b.com', 'TG_HOST_INVALID_CHAR'],
    ['a@b.com', 'TG_HOST_INVALID_CHAR'],
    ['a%2eb.com', 'TG_HOST_INVALID_CHAR'],
    ['a\0.com', 'TG_HOST_INVALID_CHAR'],
    ['a\tb.com', 'TG_HOST_INVALID_CHAR'],
    ['a+b.com', 'TG_HOST_INVALID_CHAR'],
    ['foo.123', 'TG_HOST_NUMERIC_TLD'],
    ['foo.0x1f', 'TG_HOST_NUMERIC_TLD'],
    ['1.2.3.4.5', 'TG_HOST_NUMERIC_TLD'],
    ['08.1.1.1', 'TG_HOST_NUMERIC_TLD'],
    ['4294967296', 'TG_HOST_NUMERIC_TLD'],
    ['a\u200db.com', 'TG_HOST_IDNA'],
  ];
  for (const [input, code] of bad) {
    const r = normalizeHost(input);
    assert.equal(r.ok, false, JSON.stringify(input));
    assert.equal(!r.ok && r.code, code, JSON.stringify(input));
  }
});

test('normalizeHostPattern: wildcards only as a whole leftmost label', () => {
  const ok: [string, string][] = [
    ['*', '*'],
    ['*.Example.COM.', '*.example.com'],
    ['*.bücher.de', '*.xn--bcher-kva.de'],
    ['api.example.com', 'api.example.com'],
    ['10.221.30.2', '10.221.30.2'],
    ['*.com', '*.com'],
  ];
  for (const [p, want] of ok) {
    const r = normalizeHostPattern(p);
    assert.ok(r.ok, p);
    assert.equal(r.pattern, want, p);
  }
  for (const bad of ['', '**', '*.', '*example.com', 'a.*.example.com', 'example.*', '*.*.example.com', '*.10.0.0.1', '*.-a.com', '.*']) {
    assert.equal(normalizeHostPattern(bad).ok, false, JSON.stringify(bad));
  }
});

test('hostMatches: Istio semantics', () => {
  const cases: [string, string, boolean][] = [
    ['example.com', 'example.com', true],
    ['example.com', 'www.example.com', false],
    ['example.com', 'example.co', false],
    ['*', 'anything.at.all', true],
    ['*', 'localhost', true],
    ['*.example.com', 'www.example.com', true],
    ['*.example.com', 'a.b.c.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
    ['*.example.com', 'www.example.com.evil', false],
    ['*.example.com', '.example.com', false],
    ['*.com', 'example.com', true],
    ['*.com', 'com', false],
    ['*example.com', 'www.example.com', false], // not a valid pattern
  ];
  for (const [p, h, want] of cases) assert.equal(hostMatches(p, h), want, `${p} ~ ${h}`);
  assert.equal(isWildcardPattern('*.a'), true);
  assert.equal(isWildcardPattern('*'), true);
  assert.equal(isWildcardPattern('a.com'), false);
});

test('HostMatcher: exact beats longest wildcard beats catch-all', () => {
  const m = new HostMatcher<string>([
    ['*', 'any'],
    ['*.com', 'com'],
    ['*.example.com', 'example'],
    ['*.api.example.com', 'api'],
    ['api.example.com', 'api-exact'],
    ['Shop.Example.com.', 'shop'],
  ]);
  const cases: [string, string | undefined][] = [
    ['api.example.com', 'api-exact'],
    ['v1.api.example.com', 'api'],
    ['a.b.v1.api.example.com', 'api'],
    ['www.example.com', 'example'],
    ['shop.example.com', 'shop'],
    ['x.shop.example.com', 'example'],
    ['example.com', 'com'],
    ['other.com', 'com'],
    ['com', 'any'],
    ['example.org', 'any'],
    ['localhost', 'any'],
    ['10.0.0.1', 'any'],
  ];
  for (const [h, want] of cases) assert.equal(m.lookup(h), want, h);
  assert.deepEqual(m.match('v1.api.example.com'), { pattern: '*.api.example.com', value: 'api' });
  assert.equal(m.size, 6);

  const noCatchAll = new HostMatcher<number>([['*.example.com', 1], ['example.com', 2]]);
  assert.equal(noCatchAll.lookup('example.com'), 2);
  assert.equal(noCatchAll.lookup('a.example.com'), 1);
  assert.equal(noCatchAll.lookup('example.org'), undefined);
  assert.equal(noCatchAll.lookup('com'), undefined);
  assert.equal(new HostMatcher<number>([]).lookup('a.com'), undefined);
});

test('HostMatcher: duplicates after normalization keep the first, invalid patterns throw', () => {
  const m = new HostMatcher<number>([
    ['example.com', 1],
    ['EXAMPLE.com.', 2],
    ['*.example.com', 3],
    ['*.Example.Com', 4],
    ['*', 5],
    ['*', 6],
    ['bücher.de', 7],
    ['xn--bcher-kva.de', 8],
  ]);
  assert.equal(m.lookup('example.com'), 1);
  assert.equal(m.lookup('a.example.com'), 3);
  assert.equal(m.lookup('zzz'), 5);
  assert.equal(m.lookup('xn--bcher-kva.de'), 7);
  assert.deepEqual(m.duplicates, ['EXAMPLE.com.', '*.Example.Com', '*', 'xn--bcher-kva.de']);
  assert.equal(m.size, 4);
  for (const bad of ['*example.com', 'a.*.com', '', 'exa mple.com']) {
    assert.throws(
      () => new HostMatcher([[bad, 1]]),
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_HOST_BAD_PATTERN' && e.source === 'config',
      bad,
    );
  }
});

/** The obvious linear implementation, used as the oracle. */
function referenceLookup(entries: readonly (readonly [string, number])[], host: string): number | undefined {
  let best: { len: number; value: number } | undefined;
  for (const [p, v] of entries) {
    if (!hostMatches(p, host)) continue;
    const len = p === host ? Infinity : p === '*' ? 0 : p.length;
    if (best === undefined || len > best.len) best = { len, value: v };
  }
  return best?.value;
}

test('HostMatcher: 10,000 patterns agree with a linear oracle and look up in O(labels)', () => {
  const rand = rng(2024);
  const words = ['api', 'www', 'cdn', 'mail', 'eu', 'us', 'svc', 'prod', 'dev', 'a', 'b', 'c', 'x1', 'y-2'];
  const tlds = ['com', 'net', 'org', 'io', 'internal'];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const name = (labels: number): string => {
    const parts: string[] = [];
    for (let i = 0; i < labels; i++) parts.push(pick(words));
    parts.push(`d${Math.floor(rand() * 400)}`, pick(tlds));
    return parts.join('.');
  };
  const seen = new Set<string>();
  const entries: [string, number][] = [];
  while (entries.length < 10_000) {
    const p = rand() < 0.4 ? `*.${name(Math.floor(rand() * 3))}` : name(Math.floor(rand() * 4));
    if (seen.has(p)) continue;
    seen.add(p);
    entries.push([p, entries.length]);
  }
  const m = new HostMatcher(entries);
  assert.equal(m.size, 10_000);
  assert.deepEqual(m.duplicates, []);

  const hosts: string[] = [];
  for (let i = 0; i < 1500; i++) hosts.push(name(Math.floor(rand() * 6)));
  // Hosts derived from the patterns themselves hit exact and wildcard boundaries.
  for (let i = 0; i < 750; i++) {
    const [p] = entries[Math.floor(rand() * entries.length)]!;
    hosts.push(p.startsWith('*.') ? p.slice(2) : p, p.startsWith('*.') ? `z.${p.slice(2)}` : `z.${p}`);
  }
  let hits = 0;
  let wildHits = 0;
  for (const h of hosts) {
    const want = referenceLookup(entries, h);
    assert.equal(m.lookup(h), want, h);
    if (want !== undefined) hits++;
    if (want !== undefined && entries[want]![0].startsWith('*.')) wildHits++;
  }
  assert.ok(hits > 800 && wildHits > 250, `oracle coverage too thin: ${hits} hits, ${wildHits} via wildcard`);

  // With a catch-all added, misses become the catch-all and nothing else changes.
  const withAny = new HostMatcher<number>([...entries, ['*', -1]]);
  for (const h of hosts.slice(0, 500)) assert.equal(withAny.lookup(h), referenceLookup(entries, h) ?? -1, h);

  // O(labels), counted, not timed (bench/micro.mjs times it): a lookup probes the exact index
  // once and the wildcard index at most once per dot, however many of the 10,000 patterns exist.
  // A linear scan over the patterns (or a probe per pattern) fails the bound.
  const probes = { n: 0 };
  for (const field of ['exact', 'suffixes'] as const) {
    const index = (m as unknown as Record<string, Map<string, unknown>>)[field]!;
    assert.ok(index instanceof Map && index.size > 0, `the ${field} index holds patterns`);
    const get = index.get.bind(index);
    index.get = (k: string) => (probes.n++, get(k));
  }
  for (const h of hosts) {
    probes.n = 0;
    const want = referenceLookup(entries, h);
    assert.equal(m.lookup(h), want, h);
    const dots = h.split('.').length - 1;
    assert.ok(probes.n >= 1 && probes.n <= 1 + dots, `${h}: ${probes.n} index probes for ${dots} dots`);
  }
});

test('patternsOverlap: Istio host.Name.Matches, symmetric', () => {
  const cases: [string, string, boolean][] = [
    ['*', 'anything.com', true],
    ['*', '*.example.com', true],
    ['*', '*', true],
    ['*.example.com', 'www.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', '*.example.com', true],
    ['*.example.com', '*.api.example.com', true],
    ['*.example.com', '*.example.org', false],
    ['*.example.com', '*.com', true],
    ['*.example.com', '*.badexample.com', false],
    ['*.com', 'com', false],
    ['a.example.com', 'a.example.com', true],
    ['a.example.com', 'b.example.com', false],
    ['edition.cnn.com', '*.cnn.com', true],
    ['www.naver.com', '*.cnn.com', false],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(patternsOverlap(a, b), want, `${a} ∩ ${b}`);
    assert.equal(patternsOverlap(b, a), want, `${b} ∩ ${a}`);
  }
});

test('patternIntersection: the narrower pattern, or undefined', () => {
  const cases: [string, string, string | undefined][] = [
    ['*', 'a.com', 'a.com'],
    ['*', '*.a.com', '*.a.com'],
    ['*.a.com', '*.b.a.com', '*.b.a.com'],
    ['*.a.com', 'x.a.com', 'x.a.com'],
    ['*.a.com', 'a.com', undefined],
    ['x.a.com', 'x.a.com', 'x.a.com'],
    ['x.a.com', 'y.a.com', undefined],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(patternIntersection(a, b), want, `${a} ∩ ${b}`);
    assert.equal(patternIntersection(b, a), want, `${b} ∩ ${a}`);
  }
});
