/**
 * Micro-benchmark: ns per request for HttpParser vs Node's own llhttp binding, on a typical
 * ~400-byte keep-alive request. Not a test. Run after `tsc`:
 *
 *   node dist/src/dataplane/http/parser.bench.js [requestsPerRun]
 *
 * Two shapes: one execute() per request (one read per request, the keep-alive common case) and
 * 100 pipelined requests per execute(). Median and best of 7 alternating rounds after a warm-up.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { HttpParser, type HttpParserHandler } from './parser.js';
import type { RequestHead } from './head.js';

const REQUEST =
  'GET /api/v1/users/12345/profile?include=settings&fields=name,email HTTP/1.1\r\n' +
  'Host: api.example.com\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
  'Accept: application/json, text/plain, */*\r\n' +
  'Accept-Encoding: gzip, deflate, br\r\n' +
  'Accept-Language: en-US,en;q=0.9\r\n' +
  'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl\r\n' +
  'X-Request-Id: 3f2b8c1e-9d4a-4b6e-8f1a-2c3d4e5f6a7b\r\n' +
  'Connection: keep-alive\r\n' +
  '\r\n';

const N = Number(process.argv[2] ?? 300_000);
const one = Buffer.from(REQUEST, 'latin1');
const PIPE = 100;
const pipelined = Buffer.from(REQUEST.repeat(PIPE), 'latin1');

let sink = 0;

class CountingHandler implements HttpParserHandler<RequestHead> {
  onHead(head: RequestHead): void {
    sink += head.headers.length;
  }
  onBody(): void {}
  onMessageComplete(): void {
    sink++;
  }
  onError(err: Error): void {
    throw err;
  }
}

function tollgateSingle(n: number): void {
  const p = new HttpParser('request', new CountingHandler());
  for (let i = 0; i < n; i++) p.execute(one);
}

function tollgatePipelined(n: number): void {
  const p = new HttpParser('request', new CountingHandler());
  for (let i = 0; i < n / PIPE; i++) p.execute(pipelined);
}

interface NodeHttpParser {
  initialize(type: number, resource: object): void;
  execute(buf: Buffer): number | Error;
  [key: number]: unknown;
}
interface NodeHttpParserClass {
  new (): NodeHttpParser;
  REQUEST: number;
  kOnHeadersComplete: number;
  kOnMessageComplete: number;
  kOnBody: number;
  kOnHeaders: number;
  kOnExecute: number;
}

/** Node's internal llhttp binding, as node:http uses it. Undefined if this Node does not expose it. */
function nodeParserClass(): NodeHttpParserClass | undefined {
  try {
    const mod = createRequire(import.meta.url)('_http_common') as { HTTPParser?: NodeHttpParserClass };
    return mod.HTTPParser;
  } catch {
    return undefined;
  }
}

function nodeRunner(P: NodeHttpParserClass, buf: Buffer, perCall: number): (n: number) => void {
  return (n) => {
    const p = new P();
    p.initialize(P.REQUEST, {});
    p[P.kOnHeaders] = () => {};
    p[P.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[]) => {
      sink += headers.length;
    };
    p[P.kOnBody] = () => {};
    p[P.kOnMessageComplete] = () => {
      sink++;
    };
    for (let i = 0; i < n / perCall; i++) {
      const r = p.execute(buf);
      if (r instanceof Error) throw r;
    }
  };
}

/** Runs the contestants alternately (A B C D, A B C D, ...) so machine noise hits all alike. */
function measureAll(contestants: ReadonlyArray<readonly [string, (n: number) => void]>, rounds: number): void {
  for (const [, fn] of contestants) fn(Math.min(N, 100_000)); // warm-up (JIT)
  const samples = contestants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    contestants.forEach(([, fn], k) => {
      const t0 = process.hrtime.bigint();
      fn(N);
      samples[k]!.push(Number(process.hrtime.bigint() - t0) / N);
    });
  }
  contestants.forEach(([name], k) => {
    const runs = samples[k]!.sort((a, b) => a - b);
    const median = runs[runs.length >> 1]!;
    console.log(`${name.padEnd(44)} median ${median.toFixed(0).padStart(5)} ns/req  min ${runs[0]!.toFixed(0).padStart(5)} ns/req  (${(1e3 / median).toFixed(2)} M req/s)`);
  });
}

const contestants: Array<readonly [string, (n: number) => void]> = [
  ['tollgate HttpParser, 1 request/execute', tollgateSingle],
  ['tollgate HttpParser, 100 pipelined/execute', tollgatePipelined],
];
const P = nodeParserClass();
if (P === undefined) console.log('node llhttp: not reachable on this Node, skipped');
else {
  contestants.push(['node llhttp (_http_common), 1 request/execute', nodeRunner(P, one, 1)]);
  contestants.push(['node llhttp, 100 pipelined/execute', nodeRunner(P, pipelined, PIPE)]);
}
console.log(`node ${process.version}, ${one.length}-byte request, ${N} requests per run, 7 alternating rounds`);
measureAll(contestants, 7);
if (sink === 0) console.log('(unreachable)');
