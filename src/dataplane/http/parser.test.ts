import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { HttpParser, classifyTransferEncoding, type HttpParserHandler, type HttpParserOptions } from './parser.js';
import { HttpParseError, type MessageKind } from './errors.js';
import type { HttpHead, RequestHead, ResponseHead } from './head.js';

// ------------------------------------------------------------------ harness

type Event =
  | { readonly t: 'head'; readonly head: HttpHead }
  | { t: 'body'; data: string }
  | { readonly t: 'trailers'; readonly trailers: string[] }
  | { readonly t: 'complete' }
  | { readonly t: 'error'; readonly code: string; readonly status: number; readonly message: string };

interface RunOptions {
  /** Sizes of successive reads; the rest goes in one read. 'bytes' = one byte per read. */
  readonly split?: readonly number[] | 'bytes' | undefined;
  readonly options?: HttpParserOptions | undefined;
  /** Call finish() after the input (peer closed). */
  readonly finish?: boolean | undefined;
  /** Responses: methods of the requests, in order (default GET for each). */
  readonly methods?: readonly string[] | undefined;
  /** Pause after every message, like a connection manager serving one request at a time. */
  readonly pauseEach?: boolean | undefined;
}

/**
 * Records events the way a connection manager would see them. Consecutive body slices are merged
 * so that the record does not depend on how the input was split.
 */
class Recorder implements HttpParserHandler<HttpHead> {
  readonly events: Event[] = [];
  parser: HttpParser | null = null;
  pauseEach = false;
  methods: string[] = [];
  private lastStatus = 0;

  onHead(head: HttpHead): void {
    if (head.kind === 'response') this.lastStatus = head.statusCode;
    this.events.push({ t: 'head', head });
  }
  onBody(chunk: Buffer): void {
    const last = this.events[this.events.length - 1];
    if (last !== undefined && last.t === 'body') last.data += chunk.toString('latin1');
    else this.events.push({ t: 'body', data: chunk.toString('latin1') });
  }
  onTrailers(trailers: string[]): void {
    this.events.push({ t: 'trailers', trailers });
  }
  onMessageComplete(): void {
    this.events.push({ t: 'complete' });
    if (this.parser !== null && this.parser.kind === 'response' && this.lastStatus >= 200) this.nextMethod();
    if (this.pauseEach) this.parser?.pause();
  }
  onError(err: HttpParseError): void {
    assert.ok(err instanceof HttpParseError);
    this.events.push({ t: 'error', code: err.code, status: err.status, message: err.message });
  }
  nextMethod(): void {
    const m = this.methods.shift();
    if (m !== undefined) this.parser?.expectResponseTo(m);
  }
}

function chunksOf(input: Buffer, split: RunOptions['split']): Buffer[] {
  if (split === undefined) return [input];
  if (split === 'bytes') return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
  const out: Buffer[] = [];
  let pos = 0;
  for (const n of split) {
    out.push(input.subarray(pos, Math.min(input.length, pos + n)));
    pos += n;
  }
  if (pos < input.length) out.push(input.subarray(pos));
  return out;
}

interface RunResult {
  readonly events: Event[];
  readonly parser: HttpParser;
  /** Bytes the parser did not consume (after an upgrade, an error, or at the end). */
  readonly leftover: Buffer;
}

/** Feeds `input` like a connection manager: re-feeds unconsumed bytes after each pause. */
function run(kind: MessageKind, input: string | Buffer, opts: RunOptions = {}): RunResult {
  const rec = new Recorder();
  const parser = new HttpParser(kind, rec, opts.options);
  rec.parser = parser;
  rec.pauseEach = opts.pauseEach === true;
  rec.methods = [...(opts.methods ?? [])];
  if (kind === 'response') rec.nextMethod();
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  let pending: Buffer = Buffer.alloc(0);
  for (const chunk of chunksOf(bytes, opts.split)) {
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      const n = parser.execute(buf);
      buf = buf.subarray(n);
      if (parser.isPaused && !parser.failed) {
        parser.resume();
        if (buf.length > 0) continue;
      }
      break;
    }
    pending = buf;
    if (parser.failed || parser.upgraded) break;
  }
  if (opts.finish === true) parser.finish();
  return { events: rec.events, parser, leftover: pending };
}

function heads(events: Event[]): HttpHead[] {
  return events.flatMap((e) => (e.t === 'head' ? [e.head] : []));
}
function req(events: Event[], i = 0): RequestHead {
  const h = heads(events)[i];
  assert.ok(h !== undefined && h.kind === 'request', 'expected a request head');
  return h;
}
function res(events: Event[], i = 0): ResponseHead {
  const h = heads(events)[i];
  assert.ok(h !== undefined && h.kind === 'response', 'expected a response head');
  return h;
}
function errorOf(events: Event[]): { code: string; status: number; message: string } | undefined {
  const e = events.find((x) => x.t === 'error');
  return e !== undefined && e.t === 'error' ? e : undefined;
}
/** Events with heads reduced to their comparable parts. */
/** Events as data: a head's facts and fields, whether its fields were kept raw (one read) or made strings (split). */
function shape(events: Event[]): unknown[] {
  return events.map((e) => {
    if (e.t !== 'head') return e;
    const { raw: _raw, fields: _fields, ...facts } = e.head as HttpHead & { fields?: unknown };
    return { t: 'head', ...facts, headers: e.head.headers };
  });
}

function expectError(kind: MessageKind, input: string, code: string, status: number, opts: RunOptions = {}): Event[] {
  for (const split of [undefined, 'bytes'] as const) {
    const { events } = run(kind, input, { ...opts, split });
    const err = errorOf(events);
    assert.ok(err !== undefined, `expected ${code} (split=${String(split)}), got ${JSON.stringify(shape(events)).slice(0, 300)}`);
    assert.equal(err.code, code, `split=${String(split)}: ${err.message}`);
    assert.equal(err.status, status);
    assert.equal(events.filter((e) => e.t === 'error').length, 1, 'onError is called once');
  }
  return run(kind, input, opts).events;
}

const H = 'Host: example.com\r\n';
const post = (headers: string, body = ''): string => `POST /upload HTTP/1.1\r\n${H}${headers}\r\n${body}`;

// ------------------------------------------------------------------ positive cases

describe('requests: heads and derived facts', () => {
  test('simple GET: raw headers in order and case, OWS trimmed, facts derived once', () => {
    const { events } = run('request', 'GET /a/b?c=d HTTP/1.1\r\nHost: Example.COM\r\nX-Mixed-Case:   spaced value \t\r\nAccept: */*\r\n\r\n');
    const h = req(events);
    assert.equal(h.method, 'GET');
    assert.equal(h.target, '/a/b?c=d');
    assert.equal(h.targetForm, 'origin');
    assert.equal(h.path, '/a/b?c=d');
    assert.equal(h.version, '1.1');
    assert.deepEqual(h.headers, ['Host', 'Example.COM', 'X-Mixed-Case', 'spaced value', 'Accept', '*/*']);
    assert.equal(h.host, 'Example.COM');
    assert.equal(h.authority, 'Example.COM');
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
    assert.equal(h.bodyFraming, 'none');
    assert.equal(h.keepAlive, true);
    assert.equal(h.upgrade, false);
    assert.equal(h.expectContinue, false);
    assert.deepEqual(h.connectionTokens, []);
    assert.deepEqual(events.map((e) => e.t), ['head', 'complete']);
  });

  test('obs-text bytes in a value survive as latin1', () => {
    const { events } = run('request', Buffer.concat([Buffer.from(`GET / HTTP/1.1\r\n${H}X-Name: caf`), Buffer.from([0xe9]), Buffer.from('\r\n\r\n')]));
    assert.equal(req(events).headers[3], 'caf\u00e9');
  });

  test('keep-alive rules: HTTP/1.1 default, Connection: close, HTTP/1.0 default and keep-alive', () => {
    assert.equal(req(run('request', `GET / HTTP/1.1\r\n${H}\r\n`).events).keepAlive, true);
    assert.equal(req(run('request', `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`).events).keepAlive, false);
    assert.equal(req(run('request', 'GET / HTTP/1.0\r\n\r\n').events).keepAlive, false);
    const ka = req(run('request', 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').events);
    assert.equal(ka.keepAlive, true);
    assert.equal(ka.version, '1.0');
    assert.equal(ka.host, undefined);
    assert.equal(ka.authority, undefined);
    assert.equal(req(run('request', 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').events).keepAlive, false);
  });

  test('Connection tokens from every line, lowercased, empty elements skipped', () => {
    const h = req(run('request', `GET / HTTP/1.1\r\n${H}Connection: Keep-Alive, ,X-Foo\r\nconnection: TE\r\n\r\n`).events);
    assert.deepEqual(h.connectionTokens, ['keep-alive', 'x-foo', 'te']);
  });

  test('Content-Length body, delivered as zero-copy slices of the input', () => {
    const input = Buffer.from(post('Content-Length: 11\r\n', 'hello world'));
    const slices: Buffer[] = [];
    let head: RequestHead | undefined;
    const parser = new HttpParser('request', {
      onHead: (h) => (head = h),
      onBody: (c) => slices.push(c),
      onMessageComplete: () => {},
      onError: (e) => assert.fail(e.message),
    });
    assert.equal(parser.execute(input), input.length);
    assert.equal(Buffer.concat(slices).toString(), 'hello world');
    assert.ok(slices.every((s) => s.buffer === input.buffer), 'body slices share the input memory');
    assert.equal(head?.contentLength, 11);
    assert.equal(head?.bodyFraming, 'length');
  });

  test('Content-Length: 0 and leading zeros', () => {
    const z = run('request', post('Content-Length: 0\r\n'));
    assert.deepEqual(z.events.map((e) => e.t), ['head', 'complete']);
    assert.equal(req(z.events).contentLength, 0);
    const lz = run('request', post('Content-Length: 007\r\n', 'abcdefg'));
    assert.equal(req(lz.events).contentLength, 7);
    assert.deepEqual(lz.events.map((e) => e.t), ['head', 'body', 'complete']);
  });

  test('chunked body with extensions and trailers', () => {
    const input = post('Transfer-Encoding: chunked\r\n', '5;name=value;flag;q="a \\"quoted\\" ;x"\r\nhello\r\n6 ; spaced = ext\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n');
    for (const split of [undefined, 'bytes'] as const) {
      const { events } = run('request', input, { split });
      assert.equal(req(events).chunked, true);
      assert.equal(req(events).bodyFraming, 'chunked');
      assert.deepEqual(events.slice(1), [
        { t: 'body', data: 'hello world' },
        { t: 'trailers', trailers: ['X-Checksum', 'abc', 'X-Other', '1'] },
        { t: 'complete' },
      ]);
    }
  });

  test('chunk sizes: upper/lower hex, 16 digits allowed when the value fits', () => {
    const { events } = run('request', post('Transfer-Encoding: chunked\r\n', `A\r\n0123456789\r\n000000000000000a\r\nabcdefghij\r\n0\r\n\r\n`));
    assert.deepEqual(events.slice(1), [{ t: 'body', data: '0123456789abcdefghij' }, { t: 'complete' }]);
  });

  test('Transfer-Encoding: leading/trailing OWS is field syntax and case does not matter', () => {
    for (const te of [' chunked', 'chunked  ', '\tCHUNKED', 'Chunked']) {
      const { events } = run('request', post(`Transfer-Encoding:${te}\r\n`, '0\r\n\r\n'));
      assert.equal(errorOf(events), undefined, te);
      assert.equal(req(events).chunked, true);
    }
  });

  test('Expect: 100-continue flag (HTTP/1.1 only)', () => {
    assert.equal(req(run('request', post('Expect: 100-Continue\r\nContent-Length: 1\r\n'), {}).events).expectContinue, true);
    assert.equal(req(run('request', 'POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx').events).expectContinue, false);
    assert.equal(req(run('request', post('Expect: something-else\r\n')).events).expectContinue, false);
  });

  test('Upgrade: websocket needs Connection: upgrade (and HTTP/1.1)', () => {
    const ws = req(run('request', `GET /chat HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`).events);
    assert.equal(ws.upgrade, true);
    assert.equal(ws.upgradeProtocol, 'websocket');
    assert.deepEqual(ws.connectionTokens, ['upgrade']);
    assert.equal(req(run('request', `GET / HTTP/1.1\r\n${H}Upgrade: websocket\r\n\r\n`).events).upgrade, false);
    assert.equal(req(run('request', 'GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n').events).upgrade, false);
  });

  test('absolute-form: route on the target authority, report disagreement with Host', () => {
    const same = req(run('request', 'GET http://Example.com:80/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n').events);
    assert.equal(same.targetForm, 'absolute');
    assert.equal(same.scheme, 'http');
    assert.equal(same.authority, 'Example.com:80');
    assert.equal(same.path, '/p?q');
    assert.equal(same.authorityMismatch, false);
    const other = req(run('request', 'GET https://allowed.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n').events);
    assert.equal(other.authority, 'allowed.example');
    assert.equal(other.host, 'evil.example');
    assert.equal(other.authorityMismatch, true);
    assert.equal(req(run('request', 'GET https://a.example HTTP/1.1\r\nHost: a.example:443\r\n\r\n').events).path, '/');
    assert.equal(req(run('request', 'GET http://a.example?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n').events).path, '/?x=1');
    assert.equal(req(run('request', 'GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example\r\n\r\n').events).authorityMismatch, true);
  });

  test('CONNECT: authority-form, Host optional, mismatch reported, Content-Length: 0 allowed', () => {
    const c = req(run('request', 'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n').events);
    assert.equal(c.targetForm, 'authority');
    assert.equal(c.authority, 'api.example:443');
    assert.equal(c.path, '');
    assert.equal(c.authorityMismatch, false);
    assert.equal(req(run('request', 'CONNECT api.example:443 HTTP/1.1\r\nUser-Agent: x\r\n\r\n').events).authority, 'api.example:443');
    assert.equal(req(run('request', 'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example\r\n\r\n').events).authorityMismatch, false);
    assert.equal(req(run('request', 'CONNECT api.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n').events).authorityMismatch, true);
    assert.equal(req(run('request', 'CONNECT [2001:db8::1]:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n').events).authority, '[2001:db8::1]:443');
  });

  test('OPTIONS * (asterisk-form)', () => {
    const h = req(run('request', `OPTIONS * HTTP/1.1\r\n${H}\r\n`).events);
    assert.equal(h.targetForm, 'asterisk');
    assert.equal(h.path, '*');
  });

  test('query tolerates the unwise characters clients send; path stays strict', () => {
    assert.equal(req(run('request', `GET /s?q={"a":[1|2]}^\`<x> HTTP/1.1\r\n${H}\r\n`).events).path, '/s?q={"a":[1|2]}^`<x>');
    assert.equal(req(run('request', `GET /a%2Fb/%7e HTTP/1.1\r\n${H}\r\n`).events).path, '/a%2Fb/%7e');
  });

  test('up to four empty lines before a request line are ignored', () => {
    const { events } = run('request', `\r\n\r\nGET / HTTP/1.1\r\n${H}\r\n`);
    assert.equal(req(events).method, 'GET');
    expectError('request', `\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', `\nGET / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BARE_LF', 400);
  });

  test('unknown but well-formed methods pass (a proxy forwards them)', () => {
    assert.equal(req(run('request', `PROPFIND /d HTTP/1.1\r\n${H}\r\n`).events).method, 'PROPFIND');
  });

  test('limits are inclusive: exactly maxHeaderBytes and maxHeaders pass', () => {
    const head = `GET / HTTP/1.1\r\n${H}X-Pad: `;
    const pad = 'p'.repeat(16 * 1024 - head.length - 4);
    const exact = `${head}${pad}\r\n\r\n`;
    assert.equal(exact.length, 16 * 1024);
    assert.equal(errorOf(run('request', exact).events), undefined);
    assert.equal(errorOf(run('request', exact, { split: 'bytes' }).events), undefined);
    expectError('request', `${head}${pad}p\r\n\r\n`, 'TG_HTTP_HEADERS_TOO_LARGE', 431);
    const fields = Array.from({ length: 99 }, (_, i) => `X-${i}: v\r\n`).join('');
    assert.equal(errorOf(run('request', `GET / HTTP/1.1\r\n${H}${fields}\r\n`).events), undefined);
  });
});

describe('requests: pipelining, pause/resume and splits', () => {
  const pipeline =
    `GET /one HTTP/1.1\r\n${H}\r\n` +
    `POST /two HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` +
    `POST /three HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`;

  test('three pipelined requests in one buffer, one at a time with pause/resume', () => {
    const rec = new Recorder();
    const parser = new HttpParser('request', rec);
    rec.parser = parser;
    rec.pauseEach = true;
    let buf = Buffer.from(pipeline);
    const served: string[] = [];
    while (buf.length > 0) {
      const n = parser.execute(buf);
      assert.ok(parser.isPaused, 'paused after each message');
      served.push(req(rec.events, served.length).path);
      buf = buf.subarray(n);
      assert.equal(parser.execute(buf), 0, 'a paused parser consumes nothing');
      parser.resume();
    }
    assert.deepEqual(served, ['/one', '/two', '/three']);
    assert.deepEqual(rec.events.filter((e) => e.t !== 'head'), [
      { t: 'complete' },
      { t: 'body', data: 'hello' },
      { t: 'complete' },
      { t: 'body', data: 'abc' },
      { t: 'complete' },
    ]);
    assert.ok(parser.idle);
  });

  test('one byte at a time gives the same events as one read', () => {
    const whole = run('request', pipeline);
    const bytes = run('request', pipeline, { split: 'bytes' });
    assert.deepEqual(shape(bytes.events), shape(whole.events));
    assert.equal(heads(whole.events).length, 3);
  });

  test('a head split at every offset parses identically', () => {
    const input = `POST /x HTTP/1.1\r\n${H}Content-Length: 3\r\nX-A: 1\r\n\r\nabc`;
    const expected = shape(run('request', input).events);
    for (let i = 1; i < input.length; i++) {
      assert.deepEqual(shape(run('request', input, { split: [i] }).events), expected, `split at ${i}`);
    }
  });

  test('random splits of a pipelined stream (property)', () => {
    const stream =
      `\r\nGET /a HTTP/1.1\r\n${H}Connection: keep-alive\r\n\r\n` +
      `PUT /b HTTP/1.1\r\n${H}Content-Length: 10\r\nX-Long: ${'v'.repeat(300)}\r\n\r\n0123456789` +
      `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1a;ext="q\\"x"\r\n${'z'.repeat(26)}\r\n2\r\nok\r\n0\r\nT: 1\r\n\r\n` +
      `GET http://example.com/d HTTP/1.1\r\n${H}Expect: 100-continue\r\n\r\n` +
      `OPTIONS * HTTP/1.1\r\n${H}\r\n`;
    const expected = shape(run('request', stream).events);
    assert.equal(expected.filter((e) => (e as { t: string }).t === 'complete').length, 5);
    let seed = 0x9e3779b9;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let iter = 0; iter < 300; iter++) {
      const split: number[] = [];
      for (let left = stream.length; left > 0;) {
        const n = 1 + rand(iter % 3 === 0 ? 8 : 120);
        split.push(n);
        left -= n;
      }
      const pauseEach = iter % 2 === 0;
      assert.deepEqual(shape(run('request', stream, { split, pauseEach }).events), expected, `iteration ${iter}: ${split.join(',')}`);
    }
  });

  test('mutated streams (fuzz): never throws, split-invariant up to where bytes stop', () => {
    const stream = Buffer.from(
      `\r\nGET /a HTTP/1.1\r\n${H}Connection: keep-alive\r\n\r\nPUT /b HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n0123456789` +
        `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1a;e="q\\"x"\r\n${'z'.repeat(26)}\r\n0\r\nT: 1\r\n\r\n` +
        `GET http://example.com/d HTTP/1.1\r\n${H}\r\n`,
      'latin1',
    );
    const nasty = [0, 9, 10, 13, 32, 0x22, 0x2c, 0x3a, 0x3b, 0x7f, 0xff, 0x30];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let iter = 0; iter < 1500; iter++) {
      const input = Buffer.from(stream);
      for (let k = 1 + rand(3); k > 0; k--) input[rand(input.length)] = nasty[rand(nasty.length)]!;
      const whole = shape(run('request', input, { finish: true }).events);
      const split: number[] = [];
      for (let left = input.length; left > 0; left -= split[split.length - 1]!) split.push(1 + rand(9));
      const parts = shape(run('request', input, { split, finish: true }).events);
      const last = parts[parts.length - 1] as { t: string; code?: string } | undefined;
      if (last?.code === 'TG_HTTP_TRUNCATED' && whole.length === parts.length) {
        // A line whose LF never came: one read saw the bad byte, byte-wise reads waited for the LF.
        assert.deepEqual(parts.slice(0, -1), whole.slice(0, -1), `iteration ${iter}`);
      } else {
        assert.deepEqual(parts, whole, `iteration ${iter}: ${JSON.stringify(input.toString('latin1'))}`);
      }
    }
  });

  test('pause in onHead stops before the body; resume and re-feed continues', () => {
    const events: string[] = [];
    const parser: HttpParser<'request'> = new HttpParser('request', {
      onHead: (h) => {
        events.push(`head ${h.expectContinue}`);
        parser.pause();
      },
      onBody: (c) => events.push(`body ${c.toString()}`),
      onMessageComplete: () => events.push('complete'),
      onError: (e) => events.push(e.code),
    });
    const input = Buffer.from(post('Expect: 100-continue\r\nContent-Length: 4\r\n', 'data'));
    const n = parser.execute(input);
    assert.equal(n, input.length - 4);
    assert.deepEqual(events, ['head true']);
    parser.resume();
    assert.equal(parser.execute(input.subarray(n)), 4);
    assert.deepEqual(events, ['head true', 'body data', 'complete']);
  });

  test('backpressure: pause in onBody stops mid-body', () => {
    const bodies: string[] = [];
    let completes = 0;
    const parser: HttpParser<'request'> = new HttpParser('request', {
      onHead: () => {},
      onBody: (c) => {
        bodies.push(c.toString());
        parser.pause();
      },
      onMessageComplete: () => completes++,
      onError: () => assert.fail('no error expected'),
    });
    const head = Buffer.from(post('Content-Length: 6\r\n'));
    assert.equal(parser.execute(Buffer.concat([head, Buffer.from('abc')])), head.length + 3);
    assert.equal(completes, 0);
    parser.resume();
    assert.equal(parser.execute(Buffer.from('defGET')), 3, 'stops after the last body byte, completion needs no bytes');
    assert.equal(completes, 1);
    assert.deepEqual(bodies, ['abc', 'def']);
  });

  test('a bodyless message paused in onHead still completes', () => {
    let completes = 0;
    const parser: HttpParser<'request'> = new HttpParser('request', {
      onHead: () => parser.pause(),
      onBody: () => {},
      onMessageComplete: () => completes++,
      onError: () => assert.fail('no error expected'),
    });
    const input = Buffer.from(`GET / HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n`);
    assert.equal(parser.execute(input), input.indexOf('GET /2'));
    assert.equal(completes, 1);
    assert.ok(parser.idle);
  });
});

describe('requests: truncation on finish()', () => {
  test('EOF between messages is clean; mid-head or mid-body is TG_HTTP_TRUNCATED', () => {
    assert.equal(errorOf(run('request', `GET / HTTP/1.1\r\n${H}\r\n`, { finish: true }).events), undefined);
    assert.equal(errorOf(run('request', 'GET / HTT', { finish: true }).events)?.code, 'TG_HTTP_TRUNCATED');
    assert.equal(errorOf(run('request', `GET / HTTP/1.1\r\n${H}`, { finish: true }).events)?.code, 'TG_HTTP_TRUNCATED');
    assert.equal(errorOf(run('request', post('Content-Length: 10\r\n', 'short'), { finish: true }).events)?.code, 'TG_HTTP_TRUNCATED');
    assert.equal(errorOf(run('request', post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n'), { finish: true }).events)?.code, 'TG_HTTP_TRUNCATED');
  });
});

// ------------------------------------------------------------------ strictness

describe('requests: framing attacks', () => {
  test('Content-Length and Transfer-Encoding together (either order)', () => {
    expectError('request', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 'TG_HTTP_CL_TE', 400);
    expectError('request', post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n'), 'TG_HTTP_CL_TE', 400);
  });

  const badCl: Record<string, string> = {
    hex: '0x10', plus: '+5', 'inner space': '1 2', list: '5,5', 'list with space': '5, 5', empty: '',
    negative: '-1', exponent: '1e3', '2^53': '9007199254740992', '17 digits': '00000000000000005', 'trailing junk': '5;',
  };
  for (const [name, value] of Object.entries(badCl)) {
    test(`malformed Content-Length (${name}: "${value}")`, () => {
      expectError('request', post(`Content-Length: ${value}\r\n`), 'TG_HTTP_BAD_CONTENT_LENGTH', 400);
    });
  }
  test('Content-Length 2^53-1 is accepted', () => {
    assert.equal(req(run('request', post('Content-Length: 9007199254740991\r\n')).events).contentLength, 9007199254740991);
  });
  test('duplicate Content-Length, even with equal values', () => {
    expectError('request', post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'), 'TG_HTTP_BAD_CONTENT_LENGTH', 400);
    expectError('request', post('content-length: 5\r\nCONTENT-LENGTH: 6\r\n', 'hello'), 'TG_HTTP_BAD_CONTENT_LENGTH', 400);
  });

  const badTe: Record<string, [string, string, number]> = {
    'leading comma': [',chunked', 'TG_HTTP_BAD_TE', 400],
    'trailing comma': ['chunked,', 'TG_HTTP_BAD_TE', 400],
    'chunked, identity': ['chunked, identity', 'TG_HTTP_BAD_TE', 400],
    identity: ['identity', 'TG_HTTP_BAD_TE', 400],
    'gzip alone': ['gzip', 'TG_HTTP_BAD_TE', 400],
    'chunked twice': ['chunked, chunked', 'TG_HTTP_BAD_TE', 400],
    'chunked with parameter': ['chunked;q=1', 'TG_HTTP_BAD_TE', 400],
    quoted: ['"chunked"', 'TG_HTTP_BAD_TE', 400],
    'look-alike': ['xchunked', 'TG_HTTP_BAD_TE', 400],
    'vertical tab': ['chunked\x0b', 'TG_HTTP_BAD_HEADER_VALUE', 400],
    'gzip then chunked': ['gzip, chunked', 'TG_HTTP_TE_NOT_IMPLEMENTED', 501],
    'deflate then chunked': ['deflate,chunked', 'TG_HTTP_TE_NOT_IMPLEMENTED', 501],
  };
  for (const [name, [value, code, status]] of Object.entries(badTe)) {
    test(`Transfer-Encoding "${name}" -> ${code} ${status}`, () => {
      expectError('request', post(`Transfer-Encoding: ${value}\r\n`, '0\r\n\r\n'), code, status);
    });
  }
  test('a Transfer-Encoding line hidden behind whitespace is line folding', () => {
    expectError('request', `POST / HTTP/1.1\r\n${H}X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'TG_HTTP_OBS_FOLD', 400);
    // Folding the value onto a continuation line: the empty value is refused before the fold is seen.
    expectError('request', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 'TG_HTTP_BAD_TE', 400);
    expectError('request', `POST / HTTP/1.1\r\n${H}X-A:\r\n chunked\r\n\r\n0\r\n\r\n`, 'TG_HTTP_OBS_FOLD', 400);
  });
  test('two Transfer-Encoding lines', () => {
    expectError('request', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 'TG_HTTP_BAD_TE', 400);
  });
  test('Transfer-Encoding in HTTP/1.0', () => {
    expectError('request', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'TG_HTTP_BAD_TE', 400);
  });
  test('classifyTransferEncoding', () => {
    assert.equal(classifyTransferEncoding('chunked'), 'chunked');
    assert.equal(classifyTransferEncoding('gzip , chunked'), 'unsupported');
    assert.match(classifyTransferEncoding('chunked, gzip'), /not the final/);
  });

  test('CONNECT with a body', () => {
    expectError('request', 'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nContent-Length: 5\r\n\r\nhello', 'TG_HTTP_CONNECT_BODY', 400);
    expectError('request', 'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'TG_HTTP_CONNECT_BODY', 400);
  });
});

describe('requests: head syntax', () => {
  test('obs-fold', () => {
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, 'TG_HTTP_OBS_FOLD', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A: a\r\n\tb\r\n\r\n`, 'TG_HTTP_OBS_FOLD', 400);
    expectError('request', `GET / HTTP/1.1\r\n ${H}\r\n`, 'TG_HTTP_OBS_FOLD', 400);
  });

  test('bare LF anywhere in the head', () => {
    expectError('request', `GET / HTTP/1.1\n${H}\r\n`, 'TG_HTTP_BARE_LF', 400);
    expectError('request', `GET / HTTP/1.1\r\nHost: example.com\n\r\n`, 'TG_HTTP_BARE_LF', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}\n`, 'TG_HTTP_BARE_LF', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A\n: b\r\n\r\n`, 'TG_HTTP_BARE_LF', 400);
    expectError('request', `GET /\n HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BARE_LF', 400);
  });

  test('bare CR anywhere in the head', () => {
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 'TG_HTTP_BARE_CR', 400);
    expectError('request', `GET / HTTP/1.1\r\r\n${H}\r\n`, 'TG_HTTP_BARE_CR', 400);
    expectError('request', `GET /\r HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BARE_CR', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}\rX\r\n\r\n`, 'TG_HTTP_BARE_CR', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X\rY: z\r\n\r\n`, 'TG_HTTP_BARE_CR', 400);
  });

  test('NUL in value, name and target', () => {
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, 'TG_HTTP_NUL', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X\0A: b\r\n\r\n`, 'TG_HTTP_NUL', 400);
    expectError('request', `GET /\0 HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_NUL', 400);
  });

  test('other control characters in values', () => {
    for (const ctl of ['\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f']) {
      expectError('request', `GET / HTTP/1.1\r\n${H}X-A: a${ctl}b\r\n\r\n`, 'TG_HTTP_BAD_HEADER_VALUE', 400);
    }
  });

  test('whitespace between field name and colon', () => {
    expectError('request', 'GET / HTTP/1.1\r\nHost : example.com\r\n\r\n', 'TG_HTTP_SPACE_BEFORE_COLON', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}Content-Length\t: 5\r\n\r\nhello`, 'TG_HTTP_SPACE_BEFORE_COLON', 400);
  });

  test('bad field names', () => {
    expectError('request', `GET / HTTP/1.1\r\n${H}: empty\r\n\r\n`, 'TG_HTTP_BAD_HEADER_NAME', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, 'TG_HTTP_BAD_HEADER_NAME', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 'TG_HTTP_BAD_HEADER_NAME', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}X-\u00e9: b\r\n\r\n`, 'TG_HTTP_BAD_HEADER_NAME', 400);
  });

  test('header section > 16 KiB -> 431 (and configurable)', () => {
    expectError('request', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 'TG_HTTP_HEADERS_TOO_LARGE', 431);
    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(40)}\r\n`).join('');
    expectError('request', `GET / HTTP/1.1\r\n${H}${many}\r\n`, 'TG_HTTP_HEADERS_TOO_LARGE', 431, { options: { maxHeaders: 1000 } });
    expectError('request', `GET / HTTP/1.1\r\n${H}X-A: ${'a'.repeat(200)}\r\n\r\n`, 'TG_HTTP_HEADERS_TOO_LARGE', 431, { options: { maxHeaderBytes: 128 } });
  });

  test('header section > 16 KiB is detected before its end arrives', () => {
    const { events } = run('request', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20 * 1024)}`, { split: [1000, 1000] });
    assert.equal(errorOf(events)?.code, 'TG_HTTP_HEADERS_TOO_LARGE');
  });

  test('more than 100 header fields -> 431 (and configurable)', () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('');
    expectError('request', `GET / HTTP/1.1\r\n${H}${fields(100)}\r\n`, 'TG_HTTP_TOO_MANY_HEADERS', 431);
    expectError('request', `GET / HTTP/1.1\r\n${H}${fields(5)}\r\n`, 'TG_HTTP_TOO_MANY_HEADERS', 431, { options: { maxHeaders: 5 } });
  });

  test('Host: missing on HTTP/1.1, duplicated, malformed', () => {
    expectError('request', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 'TG_HTTP_MISSING_HOST', 400);
    expectError('request', 'GET http://a.example/ HTTP/1.1\r\n\r\n', 'TG_HTTP_MISSING_HOST', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 'TG_HTTP_DUPLICATE_HOST', 400);
    expectError('request', `GET / HTTP/1.1\r\n${H}host: other.example\r\n\r\n`, 'TG_HTTP_DUPLICATE_HOST', 400);
    expectError('request', 'GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n', 'TG_HTTP_DUPLICATE_HOST', 400);
    for (const host of ['', 'a b', 'user@a.example', 'a.example:', 'a.example:99999', 'a.example:080', 'a%2eexample', 'a,b', '[::1', 'a.example/x']) {
      expectError('request', `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'TG_HTTP_BAD_HOST', 400);
    }
  });

  test('versions: HTTP/1.0 and 1.1 only; well-formed others 505, garbage 400', () => {
    for (const v of ['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/3.0']) {
      expectError('request', `GET / ${v}\r\n${H}\r\n`, 'TG_HTTP_VERSION_NOT_SUPPORTED', 505);
    }
    for (const v of ['HTTP/1.10', 'http/1.1', 'HTTP/1', 'HTTP/11', 'HTTP/1.x', 'HTTPS/1.1', 'HTTP/1.1x', 'HTTP-1.1']) {
      expectError('request', `GET / ${v}\r\n${H}\r\n`, 'TG_HTTP_BAD_VERSION', 400);
    }
    expectError('request', 'GET /\r\n\r\n', 'TG_HTTP_BAD_REQUEST_LINE', 400);
  });

  test('request line shape', () => {
    expectError('request', `GET  / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', ` GET / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', `GET / HTTP/1.1 \r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', `GET /a b HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', `GET\r\n${H}\r\n`, 'TG_HTTP_BAD_REQUEST_LINE', 400);
    expectError('request', `GET\t/ HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_METHOD', 400);
  });

  test('methods must be tokens of bounded length', () => {
    expectError('request', `G(T / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_METHOD', 400);
    expectError('request', `GÉT / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_METHOD', 400);
    expectError('request', `${'X'.repeat(33)} / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_METHOD', 400);
    expectError('request', `PATCH / HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_METHOD', 400, { options: { maxMethodLength: 4 } });
  });

  test('request-target forms and bytes', () => {
    const bad = [
      'GET example.com:80', 'GET *', 'CONNECT /', 'CONNECT example.com', 'CONNECT http://example.com:443/',
      'CONNECT user@example.com:443', 'GET /a#frag', 'GET /%zz', 'GET /%4', 'GET ftp://example.com/',
      'GET http://user:pw@example.com/', 'GET http:///path', 'GET /a\\b', 'GET /a"b', 'GET /a{b}', 'OPTIONS **',
      'GET http://example.com:0/', 'GET /\u00ff',
    ];
    for (const line of bad) expectError('request', `${line} HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_TARGET', 400);
    expectError('request', `GET /\x01 HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_BAD_TARGET', 400);
  });

  test('request line longer than 8 KiB -> 414', () => {
    expectError('request', `GET /${'a'.repeat(8 * 1024)} HTTP/1.1\r\n${H}\r\n`, 'TG_HTTP_URI_TOO_LONG', 414);
    const { events } = run('request', `GET /${'a'.repeat(9 * 1024)}`, { split: [4096, 4096] });
    assert.equal(errorOf(events)?.code, 'TG_HTTP_URI_TOO_LONG', 'detected before the line ends');
  });

  test('no head is delivered for a rejected head (nothing goes upstream)', () => {
    const { events } = run('request', post('Content-Length: 1\r\nTransfer-Encoding: chunked\r\n'));
    assert.equal(heads(events).length, 0);
  });

  test('after an error the parser ignores input', () => {
    const { parser } = run('request', `GET / HTTP/1.1\r\n${H}X: \0\r\n\r\n`);
    assert.ok(parser.failed);
    assert.equal(parser.execute(Buffer.from(`GET / HTTP/1.1\r\n${H}\r\n`)), 0);
  });
});

describe('requests: chunked body strictness', () => {
  const chunked = (body: string): string => post('Transfer-Encoding: chunked\r\n', body);
  const cases: Record<string, [string, string]> = {
    'non-hex size': ['zz\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'negative size': ['-5\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    '0x prefix': ['0x5\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    '17 hex digits': ['00000000000000005\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'size above 2^53': ['fffffffffffffff\r\n', 'TG_HTTP_BAD_CHUNK'],
    'empty size': [';ext\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'empty line as size': ['\r\n', 'TG_HTTP_BAD_CHUNK'],
    'whitespace after size': ['5 \r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'missing CRLF after data': ['5\r\nhelloX\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'LF only after data': ['5\r\nhello\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'data longer than size': ['3\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'bare LF in size line': ['5\nhello\r\n0\r\n\r\n', 'TG_HTTP_BARE_LF'],
    'bare CR in size line': ['5\rhello\r\n0\r\n\r\n', 'TG_HTTP_BARE_CR'],
    'empty extension name': ['5;=x\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'extension without value': ['5;a=\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'extension: trailing whitespace': ['5;a \r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'extension: unterminated quote': ['5;a="b\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BAD_CHUNK'],
    'extension: LF inside quotes': ['5;a="b\nc"\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_BARE_LF'],
    'extension: NUL': ['5;a=\0\r\nhello\r\n0\r\n\r\n', 'TG_HTTP_NUL'],
    'trailer with Content-Length': ['0\r\nContent-Length: 5\r\n\r\n', 'TG_HTTP_BAD_TRAILER'],
    'trailer with Transfer-Encoding': ['0\r\ntransfer-encoding: chunked\r\n\r\n', 'TG_HTTP_BAD_TRAILER'],
    'trailer with Host': ['0\r\nHost: other\r\n\r\n', 'TG_HTTP_BAD_TRAILER'],
    'trailer obs-fold': ['0\r\nX-T: a\r\n b\r\n\r\n', 'TG_HTTP_OBS_FOLD'],
    'trailer space before colon': ['0\r\nX-T : a\r\n\r\n', 'TG_HTTP_SPACE_BEFORE_COLON'],
    'trailer bare LF': ['0\r\nX-T: a\n\r\n', 'TG_HTTP_BARE_LF'],
  };
  for (const [name, [body, code]] of Object.entries(cases)) {
    test(`${name} -> ${code}`, () => {
      const events = expectError('request', chunked(body), code, 400);
      assert.equal(heads(events).length, 1, 'the head was already delivered');
    });
  }

  test('a chunk line with extensions above 1 KiB', () => {
    expectError('request', chunked(`5;a=${'x'.repeat(1100)}\r\nhello\r\n0\r\n\r\n`), 'TG_HTTP_CHUNK_EXT_TOO_LONG', 400);
    const { events } = run('request', chunked(`5;a=${'x'.repeat(2000)}`), { split: [200, 300] });
    assert.equal(errorOf(events)?.code, 'TG_HTTP_CHUNK_EXT_TOO_LONG', 'detected before the line ends');
  });

  test('a flood of chunk extensions across one message', () => {
    const chunk = `1;a=${'x'.repeat(900)}\r\nz\r\n`;
    expectError('request', chunked(chunk.repeat(20) + '0\r\n\r\n'), 'TG_HTTP_CHUNK_EXT_TOO_LONG', 400);
    assert.equal(errorOf(run('request', chunked(chunk.repeat(10) + '0\r\n\r\n')).events), undefined);
  });

  test('trailer section limits', () => {
    expectError('request', chunked(`0\r\nX-T: ${'t'.repeat(17 * 1024)}\r\n\r\n`), 'TG_HTTP_HEADERS_TOO_LARGE', 431);
    const many = Array.from({ length: 101 }, (_, i) => `T${i}: v\r\n`).join('');
    expectError('request', chunked(`0\r\n${many}\r\n`), 'TG_HTTP_TOO_MANY_HEADERS', 431);
  });
});

// ------------------------------------------------------------------ responses

describe('responses', () => {
  test('Content-Length body, keep-alive', () => {
    const { events } = run('response', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello');
    const h = res(events);
    assert.equal(h.statusCode, 200);
    assert.equal(h.reason, 'OK');
    assert.equal(h.keepAlive, true);
    assert.equal(h.bodyFraming, 'length');
    assert.deepEqual(events.slice(1), [{ t: 'body', data: 'hello' }, { t: 'complete' }]);
  });

  test('the fields are the same whether the head arrived in one read (kept raw) or split', () => {
    const input = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nX-A:  b  \r\nConnection: keep-alive, X-A\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok';
    const whole = res(run('response', input).events);
    assert.ok(whole.raw !== undefined, 'one read: raw field lines');
    const want = ['Server', 'nginx', 'X-A', 'b', 'Connection', 'keep-alive, X-A', 'Upgrade', 'h2c', 'Content-Length', '2'];
    assert.deepEqual(whole.headers, want);
    assert.deepEqual(whole.connectionTokens, ['keep-alive', 'x-a']);
    assert.equal(whole.upgradeProtocol, undefined);
    for (const split of [[5], [30], [60], 'bytes'] as const) {
      const h = res(run('response', input, { split }).events);
      assert.deepEqual(h.headers, want, `split ${String(split)}`);
      assert.deepEqual(h.connectionTokens, ['keep-alive', 'x-a']);
      assert.equal(h.contentLength, 2);
    }
  });

  test('mutated response streams (fuzz): one read and random splits agree up to where bytes stop', () => {
    const stream = Buffer.from(
      'HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 22:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n' +
        'Connection: keep-alive, X-A\r\nX-A:  a \t\r\nETag: "6560-400"\r\nAccept-Ranges: bytes\r\n\r\nbody' +
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-B:\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n' +
        'HTTP/1.1 204 No Content\r\nContent-Length: 9\r\nUpgrade: h2c\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
      'latin1',
    );
    const nasty = [0, 9, 10, 13, 32, 0x22, 0x2c, 0x3a, 0x3b, 0x7f, 0x80, 0xff, 0x30, 0x5f];
    let seed = 4242;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const methods = ['GET', 'GET', 'GET', 'GET', 'GET'];
    for (let iter = 0; iter < 1500; iter++) {
      const input = Buffer.from(stream);
      for (let k = 1 + rand(3); k > 0; k--) input[rand(input.length)] = nasty[rand(nasty.length)]!;
      const whole = shape(run('response', input, { finish: true, methods }).events);
      const split: number[] = [];
      for (let left = input.length; left > 0; left -= split[split.length - 1]!) split.push(1 + rand(9));
      const parts = shape(run('response', input, { split, finish: true, methods }).events);
      const last = parts[parts.length - 1] as { t: string; code?: string } | undefined;
      if (last?.code === 'TG_HTTP_TRUNCATED' && whole.length === parts.length) {
        // A line whose LF never came: one read saw the bad byte, split reads waited for the LF.
        assert.deepEqual(parts.slice(0, -1), whole.slice(0, -1), `iteration ${iter}`);
      } else {
        assert.deepEqual(parts, whole, `iteration ${iter}: ${JSON.stringify(input.toString('latin1'))}`);
      }
    }
  });

  test('reason phrase may be empty, with or without the space', () => {
    assert.equal(res(run('response', 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').events).reason, '');
    assert.equal(res(run('response', 'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n').events).statusCode, 404);
    assert.equal(res(run('response', 'HTTP/1.1 503 Service Unavailable, try later\r\nContent-Length: 0\r\n\r\n').events).reason, 'Service Unavailable, try later');
  });

  test('response to HEAD has no body even with Content-Length; next response follows', () => {
    const input = 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const { events } = run('response', input, { methods: ['HEAD', 'GET'] });
    assert.equal(res(events, 0).contentLength, 1234);
    assert.equal(res(events, 0).bodyFraming, 'none');
    assert.deepEqual(events.map((e) => e.t), ['head', 'complete', 'head', 'body', 'complete']);
  });

  test('204 and 304 have no body', () => {
    for (const status of ['204 No Content', '304 Not Modified']) {
      const { events } = run('response', `HTTP/1.1 ${status}\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`, { methods: ['GET', 'GET'] });
      assert.deepEqual(events.map((e) => e.t), ['head', 'complete', 'head', 'complete'], status);
    }
  });

  test('100 Continue is an interim message, then the final response', () => {
    const { events } = run('response', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', { methods: ['HEAD'] });
    assert.equal(res(events, 0).statusCode, 100);
    assert.equal(res(events, 1).statusCode, 201);
    assert.equal(res(events, 1).bodyFraming, 'none', 'the method is kept across the interim response');
  });

  test('101 Switching Protocols: parser stops, the rest belongs to the new protocol', () => {
    const input = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', 'latin1');
    const rec = new Recorder();
    const parser = new HttpParser('response', rec);
    const n = parser.execute(input);
    assert.equal(input.subarray(n).toString('latin1'), '\x81\x05hello');
    assert.ok(parser.upgraded);
    assert.equal(res(rec.events).upgrade, true);
    assert.equal(res(rec.events).upgradeProtocol, 'websocket');
    assert.deepEqual(rec.events.map((e) => e.t), ['head', 'complete']);
    assert.equal(parser.execute(Buffer.from('more')), 0);
  });

  test('2xx to CONNECT turns the connection into a tunnel', () => {
    const { events, parser, leftover } = run('response', 'HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01', { methods: ['CONNECT'] });
    assert.ok(parser.upgraded);
    assert.equal(leftover.toString('latin1'), '\x16\x03\x01');
    assert.deepEqual(events.map((e) => e.t), ['head', 'complete']);
    const denied = run('response', 'HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno', { methods: ['CONNECT'] });
    assert.equal(denied.parser.upgraded, false);
    assert.deepEqual(denied.events.map((e) => e.t), ['head', 'body', 'complete']);
  });

  test('no Content-Length or Transfer-Encoding: body until close, not reusable', () => {
    const { events } = run('response', 'HTTP/1.1 200 OK\r\n\r\npart one, part two', { split: [25, 3], finish: true });
    assert.equal(res(events).bodyFraming, 'eof');
    assert.equal(res(events).keepAlive, false);
    assert.deepEqual(events.slice(1), [{ t: 'body', data: 'part one, part two' }, { t: 'complete' }]);
  });

  test('truncated bodies are detected on finish()', () => {
    assert.equal(errorOf(run('response', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', { finish: true }).events)?.code, 'TG_HTTP_TRUNCATED');
    const chunked = run('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', { finish: true });
    assert.equal(errorOf(chunked.events)?.status, 502);
  });

  test('chunked response with trailers', () => {
    const { events } = run('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nExpires: never\r\n\r\n', { split: 'bytes' });
    assert.deepEqual(events.slice(1), [{ t: 'body', data: 'wiki' }, { t: 'trailers', trailers: ['Expires', 'never'] }, { t: 'complete' }]);
  });

  test('HTTP/1.0 response: keep-alive only when asked', () => {
    assert.equal(res(run('response', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').events).keepAlive, false);
    assert.equal(res(run('response', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').events).keepAlive, true);
    assert.equal(res(run('response', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').events).keepAlive, false);
  });

  test('framing errors answer 502 and say the connection must not be reused', () => {
    const events = expectError('response', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'TG_HTTP_CL_TE', 502);
    assert.match(errorOf(events)!.message, /do not reuse/);
    expectError('response', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 'TG_HTTP_BAD_CONTENT_LENGTH', 502);
    expectError('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'TG_HTTP_TE_NOT_IMPLEMENTED', 502);
    expectError('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 'TG_HTTP_BAD_TE', 502);
    expectError('response', 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n', 'TG_HTTP_CL_TE', 502);
    expectError('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n', 'TG_HTTP_BAD_CHUNK', 502);
    expectError('response', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', 'TG_HTTP_OBS_FOLD', 502);
  });

  test('status line strictness', () => {
    for (const line of ['HTTP/1.1 20 OK', 'HTTP/1.1 OK', 'HTTP/1.1 600 Weird', 'HTTP/1.1 099 Low', 'HTTP/1.1 2000 OK', 'HTTP/1.1  200 OK', 'HTTP/1.1']) {
      expectError('response', `${line}\r\nContent-Length: 0\r\n\r\n`, 'TG_HTTP_BAD_STATUS_LINE', 502);
    }
    expectError('response', 'HTTP/2.0 200 OK\r\n\r\n', 'TG_HTTP_VERSION_NOT_SUPPORTED', 502);
    expectError('response', 'HTTP/1.1 200 OK\x01\r\n\r\n', 'TG_HTTP_BAD_STATUS_LINE', 502);
    expectError('response', 'ICY 200 OK\r\n\r\n', 'TG_HTTP_BAD_VERSION', 502);
    expectError('response', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'TG_HTTP_BAD_STATUS_LINE', 502);
  });

  test('responses do not require Host and Host rules do not apply to them', () => {
    assert.equal(errorOf(run('response', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').events), undefined);
    assert.equal(errorOf(run('response', 'HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n').events), undefined);
  });

  test('a response parser is reusable across keep-alive responses and reports idle', () => {
    const { parser, events } = run('response', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', { split: 'bytes' });
    assert.deepEqual(heads(events).map((h) => h.kind === 'response' && h.statusCode), [200, 404]);
    assert.ok(parser.idle);
  });
});

describe('responses: a chunked body passed on as received (passChunkedBody)', () => {
  /** Records like a proxy forwarding the body unchanged; asks for it on every chunked head. */
  class RawRecorder implements HttpParserHandler<HttpHead> {
    parser!: HttpParser;
    readonly log: string[] = [];
    raw = '';
    data = 0;
    body = '';
    trailers: string[] | null = null;
    error: string | undefined;
    onHead(): void {
      this.log.push('head');
      this.parser.passChunkedBody();
    }
    onBody(chunk: Buffer): void {
      this.body += chunk.toString('latin1');
    }
    onChunkedBytes(bytes: Buffer, dataBytes: number): void {
      this.raw += bytes.toString('latin1');
      this.data += dataBytes;
    }
    onTrailers(t: string[]): void {
      this.trailers = t;
    }
    onMessageComplete(): void {
      this.log.push(`complete after ${this.raw.length} raw bytes`);
      this.parser.pause();
    }
    onError(err: HttpParseError): void {
      this.error = err.code;
    }
  }

  function feed(input: string, sizes: readonly number[]): { rec: RawRecorder; consumed: number } {
    const rec = new RawRecorder();
    const parser = new HttpParser('response', rec);
    rec.parser = parser;
    parser.expectResponseTo('GET');
    let consumed = 0;
    let pos = 0;
    for (const n of sizes) {
      if (parser.isPaused || parser.failed) break;
      // Each read in a fresh buffer, overwritten after execute(): what the parser hands on must not point into an old read.
      const buf = Buffer.from(input.slice(pos, pos + n), 'latin1');
      consumed += parser.execute(buf);
      buf.fill(0x21);
      pos += n;
    }
    return { rec, consumed };
  }

  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const body = '5;name=value\r\nhello\r\n1a;q="a b"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nGrpc-Status: 0\r\nX-Sum:  1 \r\n\r\n';

  test('every split of the reads: the body goes on byte for byte, completion after its last byte, no decoded body', () => {
    const input = head + body;
    for (let a = 1; a < input.length; a++) {
      for (const b of [1, 3, 7, input.length]) {
        const { rec } = feed(input + 'HTTP/1.1 200 OK\r\n', [a, b, ...Array.from({ length: input.length }, () => 5)]);
        assert.equal(rec.error, undefined, `split ${a},${b}`);
        assert.equal(rec.raw, body, `split ${a},${b}`);
        assert.equal(rec.data, 31);
        assert.equal(rec.body, '');
        assert.deepEqual(rec.trailers, ['Grpc-Status', '0', 'X-Sum', '1']);
        assert.deepEqual(rec.log, ['head', `complete after ${body.length} raw bytes`]);
      }
    }
  });

  test('bytes after the message are not part of it; the next message parses as usual', () => {
    const next = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const { rec, consumed } = feed(head + body + next, [10_000]);
    assert.equal(consumed, head.length + body.length);
    assert.equal(rec.raw, body);
  });

  test('an invalid chunk: only bytes before the offending one were handed on, and no completion', () => {
    // [valid prefix, rest, index in rest of the first byte that makes it invalid]
    const bad: [string, string, number][] = [
      ['5\r\nhello\r\n', 'zz\r\nhello\r\n0\r\n\r\n', 0],
      ['5\r\nhello\r\n', '3\r\nabcdef\r\n0\r\n\r\n', 6],
      ['5\r\nhello\r\n', '3\nabc\r\n0\r\n\r\n', 0],
      ['5\r\nhello\r\n0\r\n', 'Content-Length: 5\r\n\r\n', 0],
      ['5\r\nhello\r\n', `1;${'e'.repeat(20_000)}\r\nx\r\n0\r\n\r\n`, 0],
    ];
    for (const [good, rest, at] of bad) {
      for (const n of [1, 2, 4, 1000]) {
        const all = good + rest;
        const { rec } = feed(head + all, [head.length, ...Array.from({ length: Math.ceil(all.length / n) }, () => n)]);
        const what = `${JSON.stringify(rest.slice(0, 20))} split ${n}`;
        assert.ok(rec.error !== undefined, what);
        assert.ok(all.startsWith(rec.raw) && rec.raw.length <= good.length + at, `${what}: handed on ${JSON.stringify(rec.raw.slice(0, 40))}`);
        assert.ok(!rec.log.some((l) => l.startsWith('complete')), what);
      }
    }
  });

  test('a body with a Content-Length is unaffected: decoded as usual', () => {
    const rec = new RawRecorder();
    const parser = new HttpParser('response', rec);
    rec.parser = parser;
    parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'latin1'));
    assert.equal(parser.passesChunkedBody, false);
    assert.equal(rec.body, 'hello');
    assert.equal(rec.raw, '');
  });
});
