/**
 * HTTP peers for the HTTP engine's integration tests:
 * - startHttpUpstream: a node:http server that echoes what it received (peer address, method, url,
 *   raw headers, body) as JSON, counts requests/connections/aborted requests, and serves a few test
 *   paths (/status/NNN, /slow/MS, /big/BYTES, /stream/N, Upgrade -> raw echo);
 * - startRawUpstream: a TCP server whose behaviour per connection is scripted (resets, malformed
 *   responses, ...), recording what it received and whether the connection was closed;
 * - startNginx: nginx (daemon off, its own prefix dir) from a generated config, killed by PID;
 * - rawHttp / parseResponse: raw client bytes and a minimal response reader.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, listen } from './net.js';
import { stopChild } from './tools.js';

export interface SeenRequest {
  readonly peer: string;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly body: string;
}

export function header(r: { rawHeaders: readonly string[] }, name: string): string | undefined {
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i]!.toLowerCase() === name) return r.rawHeaders[i + 1];
  return undefined;
}

export interface HttpUpstream {
  readonly host: string;
  readonly port: number;
  /** Completed requests, in order. */
  readonly requests: SeenRequest[];
  /** Requests whose body did not complete (the connection was closed/reset under them). */
  aborted: number;
  connections: number;
  closedConnections: number;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer, seen: SeenRequest) => void;

function echo(_req: IncomingMessage, res: ServerResponse, _body: Buffer, seen: SeenRequest): void {
  const url = seen.url;
  let m: RegExpExecArray | null;
  if ((m = /^\/status\/(\d{3})/.exec(url))) {
    const b = `status ${m[1]}\n`;
    res.writeHead(Number(m[1]), { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(b) });
    res.end(b);
    return;
  }
  if ((m = /\/slow\/(\d+)/.exec(url))) {
    setTimeout(() => {
      if (!res.destroyed) res.end(JSON.stringify(seen));
    }, Number(m[1]));
    return;
  }
  if ((m = /^\/big\/(\d+)/.exec(url))) {
    const total = Number(m[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  if ((m = /^\/stream\/(\d+)/.exec(url))) {
    // chunked, one chunk per 10 ms
    let i = 0;
    const n = Number(m[1]);
    res.writeHead(200, { 'content-type': 'text/plain' });
    const t = setInterval(() => {
      if (res.destroyed) return clearInterval(t);
      res.write(`chunk ${i}\n`);
      if (++i >= n) {
        clearInterval(t);
        res.end();
      }
    }, 10);
    return;
  }
  const body = JSON.stringify(seen);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': 'echo', connection: 'keep-alive, x-upstream-private', 'x-upstream-private': 'secret' });
  res.end(body);
}

/** node:http echo upstream on host:port (0 = ephemeral). */
export async function startHttpUpstream(host: string, port = 0, handler: Handler = echo): Promise<HttpUpstream> {
  const sockets = new Set<Socket>();
  const up: HttpUpstream = { host, port: 0, requests: [], aborted: 0, connections: 0, closedConnections: 0, sockets, close: async () => {} };
  const server = createHttpServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, (req, res) => {
    const chunks: Buffer[] = [];
    let complete = false;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      complete = true;
      const seen: SeenRequest = { peer: req.socket.remoteAddress ?? '', method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') };
      up.requests.push(seen);
      handler(req, res, Buffer.concat(chunks), seen);
    });
    req.on('close', () => {
      if (!complete) up.aborted++;
    });
    res.on('error', () => {});
  });
  server.on('connection', (s: Socket) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      up.closedConnections++;
    });
  });
  server.on('upgrade', (req: IncomingMessage, s: Socket, head: Buffer) => {
    up.requests.push({ peer: s.remoteAddress ?? '', method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: '' });
    s.on('error', () => {});
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
    if (head.length > 0) s.write(head);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  server.on('clientError', (_e, s) => s.destroy());
  const p = await listen(server as unknown as import('node:net').Server, host, port);
  Object.assign(up, {
    port: p,
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(server as unknown as import('node:net').Server);
    },
  });
  return up;
}

export interface RawConn {
  readonly socket: Socket;
  received: string;
  closed: boolean;
  /** 'end' (FIN) or 'reset' seen from the proxy side. */
  how: 'open' | 'end' | 'reset';
}

export interface RawUpstream {
  readonly host: string;
  readonly port: number;
  readonly conns: RawConn[];
  close(): Promise<void>;
}

/** A TCP upstream scripted per connection: `onData(conn, allReceivedSoFar)` decides what to send. */
export async function startRawUpstream(host: string, onData: (c: RawConn, index: number) => void, port = 0): Promise<RawUpstream> {
  const conns: RawConn[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const c: RawConn = { socket: s, received: '', closed: false, how: 'open' };
    const index = conns.length;
    conns.push(c);
    s.on('data', (d: Buffer) => {
      c.received += d.toString('latin1');
      onData(c, index);
    });
    s.on('end', () => {
      if (c.how === 'open') c.how = 'end';
      s.end(); // the proxy closed: close our side too (no half-open sockets piling up)
    });
    s.on('error', () => {
      c.how = 'reset';
    });
    s.on('close', () => {
      c.closed = true;
    });
  });
  const p = await listen(server, host, port);
  return {
    host,
    port: p,
    conns,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await closeServer(server);
    },
  };
}

/** The path of the next complete request head `c` received, taken off `c.received`; undefined until one is complete. */
export function takeRequestPath(c: RawConn): string | undefined {
  const end = c.received.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const line = c.received.slice(0, c.received.indexOf('\r\n'));
  c.received = c.received.slice(end + 4);
  return line.split(' ')[1] ?? '/';
}

/** The sockets this process accepted on `port` (its open handles): the proxy's side of test connections. */
export function acceptedOn(port: number): Socket[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is Socket => typeof h === 'object' && h !== null && (h as Socket).localPort === port && (h as Socket).remotePort !== port);
}

/** Destroys with RST. */
export function rst(s: Socket): void {
  const r = (s as Socket & { resetAndDestroy?: () => void }).resetAndDestroy;
  if (typeof r === 'function') r.call(s);
  else s.destroy();
}

export interface Nginx {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * nginx with one worker, daemon off, everything under a temp prefix; `servers` is the content of
 * the http block's server(s). A 1 KiB file `1k` and a 1 MiB file `1m` are in the root `<dir>/www`.
 */
export async function startNginx(servers: (dir: string) => string, host: string, port: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-nginx-'));
  const www = join(dir, 'www');
  mkdirSync(www);
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(www, '1k'), Buffer.alloc(1024, 0x78));
  writeFileSync(join(www, '1m'), Buffer.alloc(1024 * 1024, 0x79));
  writeFileSync(join(www, 'index.html'), '<h1>nginx behind tollgate</h1>\n');
  chmodSync(dir, 0o755);
  chmodSync(www, 0o755);
  chmodSync(join(dir, 'tmp'), 0o777);
  const conf = `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;
  keepalive_timeout 60s;
${servers(dir)}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn('nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  while (!(await canConnect(host, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = safeRead(join(dir, 'error.log'));
      await stop();
      throw new Error(`nginx did not start on ${host}:${port}: ${err} ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { port, pid: child.pid!, dir, stop };
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

export interface ParsedResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Bytes after the first response (pipelining). */
  readonly rest: string;
}

/** Parses the first response in `text` (Content-Length or chunked or to the end). */
export function parseResponse(text: string, headRequest = false): ParsedResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  let rest = text.slice(end + 4);
  let body = '';
  const status = Number(m[1]);
  if (headRequest || status === 101 || status === 204 || status === 304 || status < 200) return { status, headers, body: '', rest };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return undefined; // incomplete
    body = rest.slice(0, n);
    rest = rest.slice(n);
  } else if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const le = rest.indexOf('\r\n');
      if (le < 0) return undefined; // incomplete
      const size = parseInt(rest.slice(0, le), 16);
      if (size === 0) {
        const end2 = rest.indexOf('\r\n\r\n', le - 2);
        if (end2 < 0) return undefined;
        rest = rest.slice(end2 + 4);
        break;
      }
      if (rest.length < le + 2 + size + 2) return undefined;
      body += rest.slice(le + 2, le + 2 + size);
      rest = rest.slice(le + 2 + size + 2);
    }
  } else {
    body = rest;
    rest = '';
  }
  return { status, headers, body, rest };
}

/** Every response in `text`, in order. */
export function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let t = text;
  for (let i = 0; i < 50 && t.length > 0; i++) {
    const r = parseResponse(t);
    if (!r) break;
    out.push(r);
    t = r.rest;
  }
  return out;
}

/** Number of open fds of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export interface RawClient {
  readonly socket: Socket;
  /** Everything received so far (latin1). */
  data(): string;
  readonly closed: () => boolean;
  /** How the connection ended: 'end' (FIN), 'reset', or 'open'. */
  readonly how: () => 'open' | 'end' | 'reset';
  send(d: string | Buffer): void;
  /** Resolves with the parsed responses once `n` complete ones arrived. */
  responses(n: number, timeoutMs?: number): Promise<ParsedResponse[]>;
  /** Resolves when the proxy closed the connection (true) or after timeoutMs (false). */
  waitClose(timeoutMs?: number): Promise<boolean>;
  destroy(): void;
}

/** A raw TCP client for byte-exact requests. */
export function rawClient(host: string, port: number, opts: { localAddress?: string } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let buf = '';
    let closed = false;
    let how: 'open' | 'end' | 'reset' = 'open';
    const waiters = new Set<() => void>();
    const poke = (): void => {
      for (const w of waiters) w();
    };
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      poke();
    });
    s.on('end', () => {
      if (how === 'open') how = 'end';
      poke();
    });
    s.on('error', () => {
      how = 'reset';
    });
    s.on('close', () => {
      closed = true;
      poke();
    });
    const until = (pred: () => boolean, timeoutMs: number): Promise<boolean> =>
      new Promise((res) => {
        if (pred()) return res(true);
        const w = (): void => {
          if (!pred()) return;
          clearTimeout(t);
          waiters.delete(w);
          res(true);
        };
        const t = setTimeout(() => {
          waiters.delete(w);
          res(false);
        }, timeoutMs);
        waiters.add(w);
      });
    s.once('error', reject);
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve({
        socket: s,
        data: () => buf,
        closed: () => closed,
        how: () => how,
        send: (d) => void s.write(d),
        responses: async (n, timeoutMs = 3000) => {
          await until(() => parseResponses(buf).length >= n || closed, timeoutMs);
          const r = parseResponses(buf);
          if (r.length < n) throw new Error(`expected ${n} responses, got ${r.length}; received: ${JSON.stringify(buf.slice(0, 600))}`);
          return r;
        },
        waitClose: (timeoutMs = 3000) => until(() => closed || how !== 'open', timeoutMs),
        destroy: () => s.destroy(),
      });
    });
  });
}

/** GET http://127.0.0.1:port/path with a Host header (fetch cannot set Host); never rejects. */
export function httpGet(port: number, path: string, host = '127.0.0.1', agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, ...(agent ? { agent } : {}), timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

export interface HostRequestOptions {
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Defaults to false (a fresh connection per request). */
  agent?: Agent | false;
  timeoutMs?: number;
}

export interface HostResponse {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
  /** Milliseconds from the call to the end of the response. */
  ms: number;
}

/**
 * A request to 127.0.0.1:port with Host `host` (plus content-length when a body is given). Unlike
 * httpGet it rejects on a socket error or on timeout (5 s unless given).
 */
export function hostRequest(port: number, host: string, o: HostRequestOptions = {}): Promise<HostResponse> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host, ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(o.body.length);
    const req = httpRequest({ host: '127.0.0.1', port, path: o.path ?? '/', method: o.method ?? 'GET', agent: o.agent ?? false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: Date.now() - t0 }));
    });
    req.setTimeout(o.timeoutMs ?? 5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A handler answering 200 with `text` (text/plain). */
export function replyText(text: string): (req: unknown, res: ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
}
