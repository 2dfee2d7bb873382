import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { buildRequestHead, buildResponseHead, compileHeaderOps, type RequestHeadFacts } from './headers.js';
import { HttpParser } from './parser.js';
import type { HttpHead } from './head.js';
import { hopByHopFilter } from './serialize.js';

function parse(kind: 'request' | 'response', text: string): HttpHead {
  let head: HttpHead | undefined;
  const p = new HttpParser(kind, { onHead: (h) => (head = h), onBody: () => {}, onMessageComplete: () => {}, onError: (e) => assert.fail(e.message) });
  p.execute(Buffer.from(text, 'latin1'));
  assert.ok(head, 'parsed');
  return head;
}

function facts(): RequestHeadFacts {
  return { xffIn: null, requestId: null, userAgent: null };
}

const base = { method: 'GET', target: '/x', host: 'up.example', framing: 'none' as const, upgrade: false, stripExpect: false, xffAppend: null, stripXff: false, proto: 'http', addRequestId: false, ops: null, xfcc: { forward: true, set: null } };

/** Name/value pairs minus the ones the builder adds itself. */
function fields(h: HttpHead, drop: string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < h.headers.length; i += 2) {
    const n = h.headers[i]!.toLowerCase();
    if (['host', 'x-forwarded-proto', ...drop].includes(n)) continue;
    out.push(h.headers[i]!, h.headers[i + 1]!);
  }
  return out;
}

describe('buildRequestHead', () => {
  it('agrees with hopByHopFilter on what is dropped, for many header mixes', () => {
    const pool: [string, string][] = [
      ['Accept', '*/*'], ['User-Agent', 'curl/8'], ['Connection', 'keep-alive'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers'],
      ['Trailer', 'X-T'], ['Proxy-Authorization', 'Basic eA=='], ['Proxy-Connection', 'close'], ['Upgrade', 'h2c'], ['X-Custom', 'a'],
      ['x-secret', 's'], ['Content-Type', 'text/plain'], ['HTTP2-Settings', 'AAA'], ['Cookie', 'c=1'], ['X-Request-Id', 'rid'],
      ['Connection', 'x-secret, Content-Length, Host'], ['Accept-Encoding', 'gzip'], ['Proxy-Authenticate', 'Basic'],
    ];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const headers: string[] = [];
      const count = 1 + rnd(10);
      for (let i = 0; i < count; i++) {
        const [n, v] = pool[rnd(pool.length)]!;
        headers.push(n, v);
      }
      const req = parse('request', `POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n${pairs(headers)}\r\n`) as Extract<HttpHead, { kind: 'request' }>;
      const text = buildRequestHead({ ...base, method: 'POST', headers: req.headers, connectionTokens: req.connectionTokens, framing: 3 }, facts());
      const out = parse('request', text);
      const want = hopByHopFilter(req.headers, req.connectionTokens);
      const wantPairs: string[] = [];
      for (let i = 0; i < want.length; i += 2) if (!['host', 'content-length'].includes(want[i]!.toLowerCase())) wantPairs.push(want[i]!, want[i + 1]!);
      assert.deepEqual(fields(out, ['content-length']), wantPairs, pairs(headers));
      assert.equal(out.contentLength, 3, 'framing is the caller\'s, and a client naming Content-Length in Connection cannot remove it');
      assert.equal((out as Extract<HttpHead, { kind: 'request' }>).host, 'up.example', 'Host is ours, never removed');
    }
  });

  it('appends X-Forwarded-For, sets X-Forwarded-Proto, adds X-Request-Id, records facts', () => {
    const f = facts();
    const text = buildRequestHead({ ...base, headers: ['X-Forwarded-For', '10.0.0.1', 'x-forwarded-for', '10.0.0.2', 'X-Forwarded-Proto', 'https', 'User-Agent', 'ua/1'], connectionTokens: [], xffAppend: '127.0.0.9', addRequestId: true }, f);
    const h = parse('request', text);
    const get = (n: string): string[] => h.headers.filter((_, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === n);
    assert.deepEqual(get('x-forwarded-for'), ['10.0.0.1, 10.0.0.2, 127.0.0.9']);
    assert.deepEqual(get('x-forwarded-proto'), ['http'], 'a client cannot claim https');
    assert.match(get('x-request-id')[0] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(f.xffIn, '10.0.0.1, 10.0.0.2');
    assert.equal(f.userAgent, 'ua/1');
    assert.equal(f.requestId, get('x-request-id')[0]);
  });

  it('to a MESH_EXTERNAL destination (stripXff): no X-Forwarded-For at all, the received value still recorded', () => {
    const f = facts();
    const text = buildRequestHead({ ...base, headers: ['X-Forwarded-For', '10.1.2.3', 'Accept', '*/*'], connectionTokens: [], xffAppend: '10.9.9.9', stripXff: true }, f);
    assert.doesNotMatch(text, /x-forwarded-for/i);
    assert.match(text, /\r\nAccept: \*\/\*\r\n/);
    assert.equal(f.xffIn, '10.1.2.3');
  });

  it('keeps an existing X-Request-Id; strips Expect when the proxy answers 100-continue; keeps Upgrade only for upgrades', () => {
    const f = facts();
    const text = buildRequestHead({ ...base, headers: ['X-Request-Id', 'abc', 'Expect', '100-continue', 'Upgrade', 'websocket', 'Connection', 'Upgrade'], connectionTokens: ['upgrade'], stripExpect: true, addRequestId: true }, f);
    assert.equal(f.requestId, 'abc');
    assert.doesNotMatch(text, /expect/i);
    assert.doesNotMatch(text, /upgrade/i);
    const up = buildRequestHead({ ...base, headers: ['Upgrade', 'websocket', 'Connection', 'Upgrade'], connectionTokens: ['upgrade'], upgrade: true }, facts());
    assert.match(up, /\r\nUpgrade: websocket\r\n/);
    assert.match(up, /\r\nConnection: upgrade\r\n\r\n$/);
  });

  it('applies route mutations, but never to Host, framing or hop-by-hop fields', () => {
    const ops = compileHeaderOps({ set: { 'X-Env': 'prod', host: 'evil', 'Content-Length': '0' }, add: { 'X-Added': '1', Connection: 'close' }, remove: ['X-Secret', 'transfer-encoding'] });
    const text = buildRequestHead({ ...base, headers: ['x-env', 'dev', 'X-Secret', 's', 'X-Keep', 'k'], connectionTokens: [], framing: 5, ops }, facts());
    const h = parse('request', text);
    assert.deepEqual(fields(h, ['content-length']), ['X-Keep', 'k', 'X-Env', 'prod', 'X-Added', '1']);
    assert.equal(h.contentLength, 5);
    assert.equal((h as Extract<HttpHead, { kind: 'request' }>).host, 'up.example');
    assert.equal(compileHeaderOps({}), null);
  });
});

describe('buildRequestHead from raw field lines', () => {
  const heads = [
    'GET /a HTTP/1.1\r\nHost: a.example\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
    'GET /a HTTP/1.1\r\nHost: a.example\r\n\r\n',
    // hop-by-hop and nominated fields wherever they are; odd spacing; empty values; repeated XFF and XFCC
    'POST /b?x=1 HTTP/1.1\r\nKeep-Alive: timeout=5\r\nHost: a.example\r\nA:1\r\nB:  2  \r\nX-Forwarded-For: 10.0.0.1\r\nConnection: x-drop, keep-alive\r\nX-Drop: y\r\nC: 3\r\nx-forwarded-for:10.0.0.2 \r\nE:\r\nTE: trailers\r\nX-Forwarded-Client-Cert: By=a;Hash=b\r\nx-forwarded-client-cert: By=c\r\nContent-Length: 2\r\nX-Request-Id: rid-1\r\nUser-Agent:  curl/8 \r\nX-Forwarded-Proto: https\r\nF: 6\r\n\r\n',
    'GET /ws HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\nProxy-Authorization: Basic eA==\r\n\r\n',
    'PUT /c HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nx-env: dev\r\nX-Secret: s\r\nX-Keep: k\r\n\r\n',
  ];
  const opsList = [null, compileHeaderOps({ remove: ['x-secret', 'c'], set: { 'X-Env': 'prod' }, add: { 'X-Via': 'tollgate' } })];
  const xfccs = [{ forward: true, set: null }, { forward: false, set: 'By=me;URI=spiffe://x' }, { forward: true, set: 'By=me' }];

  function parseSplit(text: string): Extract<HttpHead, { kind: 'request' }> {
    let head: HttpHead | undefined;
    const p = new HttpParser('request', { onHead: (h) => (head = h), onBody: () => {}, onMessageComplete: () => {}, onError: (e) => assert.fail(e.message) });
    const b = Buffer.from(text, 'latin1');
    for (let i = 0; i < b.length; i++) p.execute(b.subarray(i, i + 1));
    assert.ok(head, 'parsed');
    return head as Extract<HttpHead, { kind: 'request' }>;
  }

  it('writes the same bytes and records the same facts as from strings, and as from a head split across reads', () => {
    for (const text of heads) {
      const req = parse('request', text) as Extract<HttpHead, { kind: 'request' }>;
      assert.ok(req.raw !== undefined, 'a head read in one piece is kept raw');
      const raw = req.raw;
      const split = parseSplit(text);
      assert.equal(split.raw, undefined, 'a head split across reads is made of strings');
      assert.deepEqual(split.headers, req.headers);
      const eager = [...req.headers];
      for (const ops of opsList) {
        for (const xfcc of xfccs) {
          for (const [xffAppend, stripXff] of [[null, false], ['127.0.0.9', false], ['127.0.0.9', true]] as const) {
            for (const upgrade of [false, true]) {
              const p = { ...base, method: req.method, target: req.path, connectionTokens: req.connectionTokens, framing: req.bodyFraming === 'chunked' ? ('chunked' as const) : 7, upgrade, stripExpect: req.expectContinue, xffAppend, stripXff, ops, xfcc };
              const fromRaw = facts();
              const fromStrings = facts();
              const fromSplit = facts();
              const want = buildRequestHead({ ...p, headers: eager }, fromStrings);
              assert.equal(buildRequestHead({ ...p, headers: raw }, fromRaw), want, text);
              assert.equal(buildRequestHead({ ...p, headers: split.headers }, fromSplit), want, text);
              assert.deepEqual(fromRaw, fromStrings);
              assert.deepEqual(fromSplit, fromStrings);
            }
          }
        }
      }
    }
  });
});

describe('buildResponseHead', () => {
  it('drops hop-by-hop and nominated fields, writes our framing and connection', () => {
    const res = parse('response', 'HTTP/1.1 200 OK\r\nConnection: x-internal, keep-alive\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\nServer: up\r\n\r\n');
    const text = buildResponseHead({ status: 200, reason: 'OK', headers: res.headers, connectionTokens: res.connectionTokens, framing: 12, connection: 'close', upgrade: false, ops: compileHeaderOps({ add: { 'X-Via': 'tollgate' } }) });
    assert.equal(text, 'HTTP/1.1 200 OK\r\nServer: up\r\nX-Via: tollgate\r\nContent-Length: 12\r\nConnection: close\r\n\r\n');
  });

  it('writes a head kept as raw field lines exactly as one given as strings', () => {
    const heads = [
      'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nETag: "1"\r\n\r\n',
      // odd spacing is rewritten, hop-by-hop and nominated fields dropped wherever they are
      'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nA:1\r\nB:  2  \r\nC: 3\r\nConnection: x-drop\r\nX-Drop: y\r\nD: 4\r\nE:\r\nUpgrade: h2c\r\nTE: trailers\r\nF: 6\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n',
    ];
    const ops = [null, compileHeaderOps({ remove: ['c'], set: { D: 'set' }, add: { 'X-Via': 'tollgate' } })];
    for (const text of heads) {
      const res = parse('response', text) as Extract<HttpHead, { kind: 'response' }>;
      assert.ok(res.raw !== undefined, 'a head read in one piece is kept raw');
      const eager = [...res.headers];
      for (const op of ops) {
        for (const upgrade of [false, true]) {
          const p = { status: res.statusCode, reason: res.reason, connectionTokens: res.connectionTokens, framing: 5, connection: 'close', upgrade, ops: op } as const;
          assert.equal(buildResponseHead({ ...p, headers: res.raw }), buildResponseHead({ ...p, headers: eager }), text);
        }
      }
    }
  });
});

describe('response heads: one read (raw lines) against the same bytes read one at a time (strings)', () => {
  /** Every head the parser accepts or refuses, and what the proxy would write for each accepted one. */
  const corpus = [
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 22:00:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nLast-Modified: Tue, 01 Dec 2026 21:00:00 GMT\r\nConnection: keep-alive\r\nETag: "6560-400"\r\nAccept-Ranges: bytes\r\n\r\nabc',
    // odd casing and spacing, empty values, tabs, obs-text, duplicates, names of every tchar
    'HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: 3\r\nSET-COOKIE: a=1\r\nset-cookie: b=2\r\nX-A:1\r\nX-B:\t2\t \r\nX-C:\r\nX-D: \r\nX-E:  e  e  \r\nX-Latin: caf\xe9\r\n!#$%&\'*+-.^_`|~09az: t\r\nCONNECTION: Keep-Alive\r\n\r\nabc',
    // hop-by-hop and nominated fields wherever they are
    'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: x-drop, close\r\nX-Drop: y\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nX-Keep: k\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nX: 1\r\n\r\n0\r\n\r\n',
    'HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until close\r\n',
    'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\nX: 1\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nETag: "1"\r\nContent-Length: 10\r\n\r\n',
    'HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\n\r\n',
    'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n',
    // refused: framing attacks and syntax (both reads must refuse with the same code)
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX : 1\r\n\r\n',
    'HTTP/1.1 200 OK\r\n: 1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX(: 1\r\n\r\n',
    'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    `HTTP/1.1 200 OK\r\n${'X: 1\r\n'.repeat(101)}\r\n`,
  ];
  const methods = ['GET', 'HEAD'];
  const opsList = [null, compileHeaderOps({ remove: ['x-a', 'etag'], set: { 'X-B': 'set' }, add: { 'X-Via': 'tollgate' } })];

  /** Heads and the error, read as one buffer or a byte at a time. */
  function read(text: string, method: string, bytewise: boolean): { heads: HttpHead[]; error: string | undefined } {
    const heads: HttpHead[] = [];
    let error: string | undefined;
    const p = new HttpParser('response', { onHead: (h) => heads.push(h), onBody: () => {}, onMessageComplete: () => {}, onError: (e) => (error = e.code) });
    p.expectResponseTo(method);
    const b = Buffer.from(text, 'latin1');
    if (bytewise) for (let i = 0; i < b.length && error === undefined && !p.upgraded; i++) p.execute(b.subarray(i, i + 1));
    else p.execute(b);
    return { heads, error };
  }

  it('the same verdict, facts and forwarded bytes, for every head of the corpus', () => {
    let raw = 0;
    for (const text of corpus) {
      for (const method of methods) {
        const one = read(text, method, false);
        const split = read(text, method, true);
        assert.equal(one.error, split.error, text);
        assert.equal(one.heads.length, split.heads.length, text);
        for (let k = 0; k < one.heads.length; k++) {
          const a = one.heads[k] as Extract<HttpHead, { kind: 'response' }>;
          const b = split.heads[k] as Extract<HttpHead, { kind: 'response' }>;
          assert.ok(b.raw === undefined, 'a head read a byte at a time is made of strings');
          if (a.raw !== undefined) raw++;
          for (const f of ['statusCode', 'reason', 'version', 'contentLength', 'chunked', 'bodyFraming', 'keepAlive', 'connectionTokens', 'upgrade', 'upgradeProtocol'] as const) {
            assert.deepEqual(a[f], b[f], `${f}: ${text}`);
          }
          for (const ops of opsList) {
            for (const framing of [3, 'chunked', 'none'] as const) {
              const p = { status: a.statusCode, reason: a.reason, connectionTokens: a.connectionTokens, framing, connection: a.keepAlive ? undefined : 'close', upgrade: a.upgrade, ops };
              assert.equal(buildResponseHead({ ...p, headers: a.raw ?? a.headers }), buildResponseHead({ ...p, headers: b.headers }), text);
            }
          }
          assert.deepEqual(a.headers, b.headers, text);
        }
      }
    }
    assert.ok(raw >= 20, `the one-read heads were kept raw (${raw})`);
  });
});

function pairs(h: string[]): string {
  let s = '';
  for (let i = 0; i < h.length; i += 2) s += `${h[i]}: ${h[i + 1]}\r\n`;
  return s;
}
