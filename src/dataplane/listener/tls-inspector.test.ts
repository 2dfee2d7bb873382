import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { DEFAULT_MAX_HELLO_BYTES, inspectClientHello, type ClientHelloInfo, type InspectResult } from './tls-inspector.js';

// ---------------------------------------------------------------------------------------------
// hand-built hellos

const u8 = (n: number): Buffer => Buffer.from([n & 255]);
const u16 = (n: number): Buffer => Buffer.from([(n >>> 8) & 255, n & 255]);
const u24 = (n: number): Buffer => Buffer.from([(n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const cat = (...bs: Buffer[]): Buffer => Buffer.concat(bs);

function ext(type: number, body: Buffer): Buffer {
  return cat(u16(type), u16(body.length), body);
}

function sniExt(entries: readonly (readonly [number, Buffer | string])[]): Buffer {
  const list = cat(...entries.map(([t, n]) => {
    const b = typeof n === 'string' ? Buffer.from(n, 'latin1') : n;
    return cat(u8(t), u16(b.length), b);
  }));
  return ext(0, cat(u16(list.length), list));
}

const sni = (name: string | Buffer): Buffer => sniExt([[0, name]]);

function alpnExt(protos: readonly string[]): Buffer {
  const list = cat(...protos.map((p) => cat(u8(p.length), Buffer.from(p, 'latin1'))));
  return ext(16, cat(u16(list.length), list));
}

function versionsExt(vs: readonly number[]): Buffer {
  return ext(43, cat(u8(vs.length * 2), ...vs.map(u16)));
}

interface HelloSpec {
  readonly extensions?: readonly Buffer[] | null; // null: no extensions block at all
  readonly legacyVersion?: number;
  readonly sessionId?: Buffer;
  readonly ciphers?: Buffer;
  readonly compression?: Buffer;
  readonly handshakeType?: number;
  readonly extLenDelta?: number;
  readonly bodyLenDelta?: number;
}

/** A ClientHello handshake message (4-byte header included). */
function hello(spec: HelloSpec = {}): Buffer {
  const exts = spec.extensions === undefined ? [sni('example.com')] : spec.extensions;
  const ciphers = spec.ciphers ?? Buffer.from([0x13, 0x01, 0x13, 0x02]);
  const sid = spec.sessionId ?? Buffer.alloc(32, 7);
  let body = cat(
    u16(spec.legacyVersion ?? 0x0303),
    Buffer.alloc(32, 0xab),
    u8(sid.length), sid,
    u16(ciphers.length), ciphers,
    spec.compression ?? Buffer.from([1, 0]),
  );
  if (exts !== null) {
    const all = cat(...exts);
    body = cat(body, u16(all.length + (spec.extLenDelta ?? 0)), all);
  }
  return cat(u8(spec.handshakeType ?? 1), u24(body.length + (spec.bodyLenDelta ?? 0)), body);
}

/** Frames handshake bytes into TLS records of at most `size` bytes each (or explicit sizes). */
function records(hs: Buffer, size: number | readonly number[] = 16384): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  let k = 0;
  while (off < hs.length) {
    const n = typeof size === 'number' ? size : (size[k++] ?? hs.length);
    const frag = hs.subarray(off, off + n);
    out.push(cat(Buffer.from([0x16, 0x03, 0x01]), u16(frag.length), frag));
    off += frag.length;
  }
  return cat(...out);
}

function done(r: InspectResult): Extract<InspectResult, { state: 'done' }> {
  assert.equal(r.state, 'done', JSON.stringify(r));
  return r as Extract<InspectResult, { state: 'done' }>;
}

function expectError(r: InspectResult, code: string, label = ''): void {
  assert.equal(r.state, 'error', `${label} ${JSON.stringify(r)}`);
  assert.equal((r as { code: string }).code, code, `${label} ${JSON.stringify(r)}`);
}

/** The fields that must not depend on how the hello was split. */
function essence(r: InspectResult): unknown {
  const d = done(r);
  return { sni: d.sni, alpn: d.alpn, legacyVersion: d.legacyVersion, supportedVersions: d.supportedVersions };
}

/** Every proper prefix is need-more, the whole buffer is done with the same essence. */
function assertEveryPrefixNeedsMore(wire: Buffer, label: string): void {
  for (let i = 0; i < wire.length; i++) {
    const r = inspectClientHello(wire.subarray(0, i));
    if (r.state !== 'need-more') assert.fail(`${label}: prefix ${i}/${wire.length} gave ${JSON.stringify(r)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// capturing real ClientHellos

function hasTool(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

function requireTool(t: TestContext, cmd: string, args: string[]): boolean {
  if (hasTool(cmd, args)) return true;
  if (process.env['CI'] === 'true') assert.fail(`${cmd} is required in CI but is not installed`);
  t.skip(`${cmd} not installed`);
  return false;
}

/**
 * Starts a loopback server that accumulates bytes and re-runs the inspector after every read,
 * exactly as a listener would, until it leaves 'need-more'. Returns the bytes and every result.
 */
async function captureWith(startClient: (port: number) => { stop(): void }): Promise<{ wire: Buffer; results: InspectResult[] }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  let client: { stop(): void } | undefined;
  try {
    const captured = new Promise<{ wire: Buffer; results: InspectResult[] }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ClientHello within 10 s')), 10_000);
      server.once('connection', (sock) => {
        let acc = Buffer.alloc(0);
        const results: InspectResult[] = [];
        sock.on('error', () => {});
        sock.on('data', (d: Buffer) => {
          acc = Buffer.concat([acc, d]);
          const r = inspectClientHello(acc);
          results.push(r);
          if (r.state !== 'need-more') {
            clearTimeout(timer);
            sock.destroy();
            resolve({ wire: acc, results });
          }
        });
      });
    });
    client = startClient(port);
    return await captured;
  } finally {
    client?.stop();
    server.close();
  }
}

function nodeClient(opts: Omit<tls.ConnectionOptions, 'host' | 'port'>): (port: number) => { stop(): void } {
  return (port) => {
    const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    sock.on('error', () => {});
    return { stop: () => sock.destroy() };
  };
}

function opensslClient(extra: readonly string[]): (port: number) => { stop(): void } {
  return (port) => {
    const child: ChildProcess = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...extra], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.on('error', () => {});
    return { stop: () => { child.kill('SIGKILL'); } };
  };
}

/** Real hellos captured once and shared by the splitting tests. */
const captured = new Map<string, Buffer>();

async function real(name: string, start: (port: number) => { stop(): void }): Promise<{ wire: Buffer; result: InspectResult }> {
  const { wire, results } = await captureWith(start);
  const result = results[results.length - 1]!;
  captured.set(name, wire.subarray(0, done(result).helloBytes));
  return { wire, result };
}

// ---------------------------------------------------------------------------------------------
// real clients

test('node:tls ClientHello: SNI, ALPN, versions', async () => {
  const { wire, result } = await real('node', nodeClient({ servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] }));
  const d = done(result);
  assert.equal(d.sni, 'api.example.com');
  assert.deepEqual(d.alpn, ['h2', 'http/1.1']);
  assert.equal(d.legacyVersion, 0x0303);
  assert.ok(d.supportedVersions?.includes(0x0304), 'TLS 1.3 offered');
  assert.equal(d.helloBytes, 5 + wire.readUInt16BE(3), 'one record');
  assert.equal(wire[0], 0x16);
});

test('node:tls ClientHello: SNI normalised (case, trailing dot)', async () => {
  const { result } = await real('node-upper', nodeClient({ servername: 'WWW.Example.COM.', ALPNProtocols: ['http/1.1'] }));
  const d = done(result);
  assert.equal(d.sni, 'www.example.com');
  assert.deepEqual(d.alpn, ['http/1.1']);
});

test('node:tls ClientHello without SNI or ALPN', async () => {
  // Node sends no server_name when connecting to an IP without `servername`.
  const { result } = await real('node-nosni', nodeClient({}));
  const d = done(result);
  assert.equal(d.sni, undefined);
  assert.equal('sni' in d, false);
  assert.deepEqual(d.alpn, []);
});

test('node:tls TLS 1.2-only ClientHello has no supported_versions', async () => {
  const { result } = await real('node-tls12', nodeClient({ servername: 'legacy.example.org', maxVersion: 'TLSv1.2' }));
  const d = done(result);
  assert.equal(d.sni, 'legacy.example.org');
  assert.equal(d.supportedVersions, undefined);
  assert.equal(d.legacyVersion, 0x0303);
});

test('openssl s_client ClientHello: SNI and ALPN', async (t) => {
  if (!requireTool(t, 'openssl', ['version'])) return;
  const { result } = await real('openssl', opensslClient(['-servername', 'Edition.CNN.com', '-alpn', 'h2,http/1.1']));
  const d = done(result);
  assert.equal(d.sni, 'edition.cnn.com');
  assert.deepEqual(d.alpn, ['h2', 'http/1.1']);
  assert.ok(d.supportedVersions?.includes(0x0304));
});

test('openssl s_client ClientHello: -noservername and -tls1_2', async (t) => {
  if (!requireTool(t, 'openssl', ['version'])) return;
  const a = await real('openssl-nosni', opensslClient(['-noservername']));
  assert.equal(done(a.result).sni, undefined);
  const b = await real('openssl-tls12', opensslClient(['-servername', 'www.naver.com', '-tls1_2']));
  const d = done(b.result);
  assert.equal(d.sni, 'www.naver.com');
  assert.equal(d.supportedVersions, undefined);
});

test('real hellos: every TCP split offset, 1-byte and 2-record reframing', () => {
  assert.ok(captured.size >= 4, `captured ${[...captured.keys()].join(', ')}`);
  for (const [name, wire] of captured) {
    const whole = inspectClientHello(wire);
    const want = essence(whole);
    // A TCP split at any offset leaves the caller with a prefix: always need-more, never a guess.
    assertEveryPrefixNeedsMore(wire, name);
    // Re-frame the handshake message across TLS records.
    const hs = wire.subarray(5, 5 + wire.readUInt16BE(3));
    const oneByte = records(hs, 1);
    assert.deepEqual(essence(inspectClientHello(oneByte)), want, `${name} in 1-byte records`);
    assert.equal(done(inspectClientHello(oneByte)).helloBytes, oneByte.length);
    for (let i = 1; i < hs.length; i++) {
      const two = records(hs, [i, hs.length - i]);
      const r = inspectClientHello(two);
      assert.deepEqual(essence(r), want, `${name} split into records at ${i}`);
      assert.equal(done(r).helloBytes, two.length);
    }
    // Prefixes of the multi-record form also wait.
    assertEveryPrefixNeedsMore(records(hs, 7), `${name} in 7-byte records`);
    // Data after the hello (next record, e.g. early data) is left for the caller.
    const withTail = Buffer.concat([wire, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb])]);
    assert.equal(done(inspectClientHello(withTail)).helloBytes, wire.length);
  }
});

test('real hello over 1-byte TCP writes reaches done through the accumulate loop', async () => {
  const wire = captured.get('node');
  assert.ok(wire, 'node hello captured');
  const { wire: got, results } = await captureWith((port) => {
    const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    sock.on('error', () => {});
    let stopped = false;
    sock.once('connect', async () => {
      for (let i = 0; i < wire.length && !stopped; i++) {
        await new Promise<void>((res) => sock.write(wire.subarray(i, i + 1), () => res()));
        if (i % 16 === 0) await new Promise((res) => setImmediate(res));
      }
    });
    return { stop: () => { stopped = true; sock.destroy(); } };
  });
  assert.ok(results.length > 1, `expected several reads, got ${results.length}`);
  for (const r of results.slice(0, -1)) assert.equal(r.state, 'need-more');
  assert.deepEqual(got, wire);
  assert.deepEqual(essence(results[results.length - 1]!), essence(inspectClientHello(wire)));
});

test('fuzz: mutated real hellos never throw and always give a defined state', () => {
  const base = captured.get('node');
  assert.ok(base);
  let seed = 99;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 0x100000000);
  const states = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const m = Buffer.from(base);
    const flips = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < flips; k++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.2 ? Math.floor(rand() * m.length) : m.length;
    const r = inspectClientHello(m.subarray(0, cut));
    assert.ok(['need-more', 'done', 'error'].includes(r.state));
    if (r.state === 'error') assert.match(r.code, /^TG_TLS_/);
    if (r.state === 'done') assert.ok(r.helloBytes <= cut);
    states.add(r.state);
  }
  assert.deepEqual([...states].sort(), ['done', 'error', 'need-more']);
});

// ---------------------------------------------------------------------------------------------
// hand-built hellos

test('hand-built: minimal hello, no extensions block, unknown name types', () => {
  const d = done(inspectClientHello(records(hello({ extensions: null }))));
  assert.equal(d.sni, undefined);
  assert.deepEqual(d.alpn, []);
  assert.equal(d.supportedVersions, undefined);
  const e = done(inspectClientHello(records(hello({ extensions: [] }))));
  assert.equal(e.sni, undefined);
  // An unknown name_type entry is skipped; the host_name is used.
  const f = done(inspectClientHello(records(hello({ extensions: [sniExt([[7, 'opaque'], [0, 'Svc.Example.net.']])] }))));
  assert.equal(f.sni, 'svc.example.net');
  // All three extensions together, with versions including GREASE.
  const g = done(inspectClientHello(records(hello({
    extensions: [sni('a.example'), alpnExt(['h2', 'http/1.1', 'x']), versionsExt([0x7a7a, 0x0304, 0x0303])],
  }))));
  assert.deepEqual(g, {
    state: 'done', sni: 'a.example', alpn: ['h2', 'http/1.1', 'x'], helloBytes: g.helloBytes,
    legacyVersion: 0x0303, supportedVersions: [0x7a7a, 0x0304, 0x0303],
  });
  // SNI with underscore is accepted (Envoy does), like the normaliser.
  assert.equal(done(inspectClientHello(records(hello({ extensions: [sni('outbound_.80_._.svc.mesh')] })))).sni, 'outbound_.80_._.svc.mesh');
});

test('hand-built: invalid SNI -> TG_TLS_BAD_SNI', () => {
  const l63 = 'a'.repeat(63);
  const ok253 = [l63, l63, l63, 'a'.repeat(61)].join('.');
  assert.equal(done(inspectClientHello(records(hello({ extensions: [sni(ok253)] })))).sni, ok253);
  assert.equal(done(inspectClientHello(records(hello({ extensions: [sni(`${ok253}.`)] })))).sni, ok253);
  const bad: [string, Buffer | string][] = [
    ['empty', ''],
    ['256 bytes', 'a.'.repeat(127) + 'ab'],
    ['254 chars', `${ok253}a`],
    ['space', 'exa mple.com'],
    ['slash', 'example.com/x'],
    ['star', '*.example.com'],
    ['NUL', Buffer.from('example.com\0evil.com', 'latin1')],
    ['high byte', Buffer.from([0x65, 0xff, 0x2e, 0x63, 0x6f])],
    ['utf-8', Buffer.from('bücher.de', 'utf8')],
    ['colon', 'example.com:443'],
    ['ipv4', '127.0.0.1'],
    ['legacy ipv4', '0x7f000001'],
    ['short ipv4', '127.1'],
    ['empty label', 'a..b'],
    ['hyphen', '-a.example'],
    ['label 64', `${'a'.repeat(64)}.com`],
    ['numeric tld', 'foo.123'],
  ];
  for (const [label, name] of bad) {
    expectError(inspectClientHello(records(hello({ extensions: [sni(name)] }))), 'TG_TLS_BAD_SNI', label);
  }
  expectError(
    inspectClientHello(records(hello({ extensions: [sniExt([[0, 'a.example.com'], [0, 'b.example.com']])] }))),
    'TG_TLS_BAD_SNI', 'two host_names',
  );
  expectError(
    inspectClientHello(records(hello({ extensions: [sniExt([[0, 'a.example.com'], [0, 'a.example.com']])] }))),
    'TG_TLS_BAD_SNI', 'the same host_name twice',
  );
});

test('hand-built: oversized hellos -> TG_TLS_HELLO_TOO_LARGE', () => {
  // A padding extension sized so the handshake message is exactly the limit, then one more byte.
  const base = hello({ extensions: [sni('big.example')] }).length;
  const pad = (total: number): Buffer => ext(21, Buffer.alloc(total - base - 4));
  const atLimit = hello({ extensions: [sni('big.example'), pad(DEFAULT_MAX_HELLO_BYTES)] });
  assert.equal(atLimit.length, DEFAULT_MAX_HELLO_BYTES);
  assert.equal(done(inspectClientHello(records(atLimit))).sni, 'big.example');
  const over = hello({ extensions: [sni('big.example'), pad(DEFAULT_MAX_HELLO_BYTES + 1)] });
  const overWire = records(over);
  expectError(inspectClientHello(overWire), 'TG_TLS_HELLO_TOO_LARGE');
  // Decided from the 4-byte handshake header, before the body is buffered.
  expectError(inspectClientHello(overWire.subarray(0, 9)), 'TG_TLS_HELLO_TOO_LARGE', 'header only');
  assertEveryPrefixNeedsMore(overWire.subarray(0, 9), 'oversize header');
  // Declared 1 MiB.
  expectError(inspectClientHello(Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0x10, 0, 0])), 'TG_TLS_HELLO_TOO_LARGE', '1 MiB');
  // A custom, smaller limit.
  expectError(inspectClientHello(records(hello()), { maxHelloBytes: 64 }), 'TG_TLS_HELLO_TOO_LARGE', 'custom limit');
  // Tiny records: a legal-size hello in 1-byte records passes, but the wire bytes are bounded.
  const medium = hello({ extensions: [sni('m.example'), ext(21, Buffer.alloc(7000))] });
  const flood = records(medium, 1); // 6 wire bytes per hello byte: > 2 x 16 KiB
  const r = inspectClientHello(flood);
  expectError(r, 'TG_TLS_HELLO_TOO_LARGE', 'record flood');
  expectError(inspectClientHello(flood.subarray(0, 2 * DEFAULT_MAX_HELLO_BYTES + 10)), 'TG_TLS_HELLO_TOO_LARGE', 'flood prefix');
  assert.equal(inspectClientHello(flood.subarray(0, 2 * DEFAULT_MAX_HELLO_BYTES - 10)).state, 'need-more');
});

test('hand-built: non-TLS bytes -> TG_TLS_NOT_TLS', () => {
  const cases: [string, Buffer][] = [
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n')],
    ['CONNECT', Buffer.from('CONNECT example.com:443 HTTP/1.1\r\n\r\n')],
    ['one G', Buffer.from('G')],
    ['SSLv2 hello', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10])],
    ['SSLv2 prefix', Buffer.from([0x80, 0x2e, 0x01])],
    ['0x16 then not 3', Buffer.from([0x16, 0x04, 0x01, 0x00, 0x10])],
    ['0x16 0xfe (DTLS)', Buffer.from([0x16, 0xfe, 0xfd])],
    ['SSH', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
    ['zeros', Buffer.alloc(16)],
  ];
  for (const [label, b] of cases) expectError(inspectClientHello(b), 'TG_TLS_NOT_TLS', label);
  assert.match((inspectClientHello(cases[3]![1]) as { reason: string }).reason, /SSLv2/);
  assert.deepEqual(inspectClientHello(Buffer.alloc(0)), { state: 'need-more' });
  assert.deepEqual(inspectClientHello(Buffer.from([0x16])), { state: 'need-more' });
  assert.deepEqual(inspectClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00])), { state: 'need-more' });
});

test('hand-built: other handshake messages -> TG_TLS_NOT_CLIENT_HELLO, decided from the first byte', () => {
  const sh = records(hello({ handshakeType: 2 }));
  expectError(inspectClientHello(sh), 'TG_TLS_NOT_CLIENT_HELLO');
  expectError(inspectClientHello(sh.subarray(0, 6)), 'TG_TLS_NOT_CLIENT_HELLO', 'first handshake byte only');
  expectError(inspectClientHello(records(hello({ handshakeType: 0 }))), 'TG_TLS_NOT_CLIENT_HELLO');
  expectError(inspectClientHello(records(hello({ handshakeType: 2 }), 1).subarray(0, 6)), 'TG_TLS_NOT_CLIENT_HELLO', '1-byte record');
});

test('hand-built: truncated or inconsistent lengths -> TG_TLS_MALFORMED', () => {
  const good = hello({ extensions: [sni('x.example'), alpnExt(['h2'])] });
  const cases: [string, Buffer][] = [
    ['zero-length record', Buffer.from([0x16, 3, 1, 0, 0])],
    ['record > 2^14', Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 0x01]), Buffer.alloc(0x4001)])],
    ['alert before hello complete', Buffer.concat([records(good.subarray(0, 10)), Buffer.from([0x15, 3, 3, 0, 2, 2, 40])])],
    ['CCS before hello complete', Buffer.concat([records(good.subarray(0, 10)), Buffer.from([0x14, 3, 3, 0, 1, 1])])],
    ['bad major in 2nd record', Buffer.concat([records(good.subarray(0, 10)), Buffer.from([0x16, 2, 0, 0, 1, 1])])],
    ['bytes after hello in its record', records(Buffer.concat([good, Buffer.from([0x0b, 0, 0, 0])]))],
    ['body shorter than fields', records(hello({ bodyLenDelta: -40 }))],
    ['extensions length too long', records(hello({ extLenDelta: 1 }))],
    ['extensions length too short', records(hello({ extLenDelta: -1 }))],
    ['session_id 33', records(hello({ sessionId: Buffer.alloc(33) }))],
    ['odd cipher_suites', records(hello({ ciphers: Buffer.from([0x13, 0x01, 0x13]) }))],
    ['empty cipher_suites', records(hello({ ciphers: Buffer.alloc(0) }))],
    ['empty compression', records(hello({ compression: Buffer.from([0]) }))],
    ['legacy_version 2.0', records(hello({ legacyVersion: 0x0200 }))],
    ['duplicate extension', records(hello({ extensions: [alpnExt(['h2']), alpnExt(['h2'])] }))],
    ['duplicate server_name', records(hello({ extensions: [sni('a.example'), sni('a.example')] }))],
    ['extension overruns', records(hello({ extensions: [Buffer.from([0, 16, 0, 9, 0, 2])] }))],
    ['truncated extension header', records(hello({ extensions: [Buffer.from([0, 16, 0])] }))],
    ['empty ALPN name after a good one', records(hello({ extensions: [ext(16, Buffer.from([0, 4, 2, 0x68, 0x32, 0]))] }))],
    ['ALPN zero-length protocol', records(hello({ extensions: [ext(16, Buffer.from([0, 3, 0, 1, 0x61]))] }))],
    ['ALPN list length mismatch', records(hello({ extensions: [ext(16, Buffer.from([0, 9, 2, 0x68, 0x32]))] }))],
    ['empty ALPN list', records(hello({ extensions: [ext(16, Buffer.from([0, 0]))] }))],
    ['server_name list mismatch', records(hello({ extensions: [ext(0, Buffer.from([0, 9, 0, 0, 1, 0x61]))] }))],
    ['empty server_name list', records(hello({ extensions: [ext(0, Buffer.from([0, 0]))] }))],
    ['server_name entry overruns', records(hello({ extensions: [ext(0, Buffer.from([0, 4, 0, 0, 9, 0x61]))] }))],
    ['supported_versions odd', records(hello({ extensions: [ext(43, Buffer.from([3, 3, 4, 3]))] }))],
    ['supported_versions empty', records(hello({ extensions: [ext(43, Buffer.from([0]))] }))],
    ['supported_versions mismatch', records(hello({ extensions: [ext(43, Buffer.from([4, 3, 4]))] }))],
  ];
  for (const [label, b] of cases) expectError(inspectClientHello(b), 'TG_TLS_MALFORMED', label);
  // A handshake length longer than what arrived is not an error: more records may follow.
  assert.equal(inspectClientHello(records(hello({ bodyLenDelta: 40 }))).state, 'need-more');
  // ... and the same hello split into records is just as malformed.
  expectError(inspectClientHello(records(hello({ extLenDelta: 1 }), 3)), 'TG_TLS_MALFORMED', 'split');
});

// Its speed is measured by bench/micro.mjs (npm run bench), never here.
test('hand-built: re-running the check per read gives need-more on every prefix, then the one answer', () => {
  const whole = hello({ extensions: [sni('fast.example'), alpnExt(['h2', 'http/1.1']), versionsExt([0x0304, 0x0303])] });
  for (const wire of [records(whole), records(whole, 7)]) {
    const want = inspectClientHello(wire);
    assert.equal(want.state, 'done');
    assert.equal((want as ClientHelloInfo).sni, 'fast.example');
    // One read per byte: every shorter buffer is incomplete, never an error or an early answer.
    for (let n = 1; n < wire.length; n++) assert.equal(inspectClientHello(wire.subarray(0, n)).state, 'need-more', `prefix ${n}`);
    // Pure: the same bytes give the same answer however often they are inspected.
    for (let i = 0; i < 3; i++) assert.deepEqual(inspectClientHello(wire), want);
  }
});
