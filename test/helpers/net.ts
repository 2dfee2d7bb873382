/**
 * Peers for data-plane tests: TCP echo servers that report the peer address they saw (source-IP
 * proof), TLS servers with certificates made by `openssl req`, clients that collect what they get.
 * Every server binds a loopback address; tests pick distinct 127.x.y.z addresses so they can bind
 * the ports a config names (443, 80) side by side (any 127/8 address is local on Linux).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';

let nextLoop = 0;
/** A fresh loopback address per call in 127.<pid-derived>.x.y, so parallel test files never collide. */
export function loopbackAddress(): string {
  nextLoop++;
  const b = 100 + (process.pid % 100);
  return `127.${b}.${(nextLoop >> 8) & 255}.${(nextLoop & 255) || 1}`;
}

export function listen(server: Server, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

export interface EchoServer {
  readonly host: string;
  readonly port: number;
  /** Peer addresses of every accepted connection. */
  readonly peers: string[];
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

/**
 * On connect writes `peer=<ip>:<port>\n`, then echoes everything. On the client's FIN it writes
 * `bye\n` and ends (half-close test). `mode: 'silent'` only records.
 */
export async function startEchoServer(host: string, port = 0, opts: { greet?: boolean } = {}): Promise<EchoServer> {
  const peers: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    peers.push(`${s.remoteAddress}:${s.remotePort}`);
    if (opts.greet !== false) s.write(`peer=${s.remoteAddress}\n`);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end('bye\n'));
  });
  const p = await listen(server, host, port);
  return {
    host,
    port: p,
    peers,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

export interface Certs {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  cleanup(): void;
}

/** A self-signed certificate (CA:TRUE, so curl --cacert accepts it) for the given DNS names. */
export function makeCerts(names: readonly string[]): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'tg-certs-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { dir, cert, key, certPem: readFileSync(cert), keyPem: readFileSync(key), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TlsServer {
  readonly host: string;
  readonly port: number;
  readonly peers: string[];
  /** SNI values the server saw. */
  readonly snis: (string | false)[];
  close(): Promise<void>;
}

/**
 * node:tls server: answers any HTTP request on the TLS session with `peer=<ip> sni=<sni>` and
 * closes. Good enough for curl and openssl s_client.
 */
export async function startTlsServer(host: string, port: number, certs: Certs): Promise<TlsServer> {
  const peers: string[] = [];
  const snis: (string | false)[] = [];
  const server = createTlsServer({ cert: certs.certPem, key: certs.keyPem, allowHalfOpen: false }, (s: TLSSocket) => {
    peers.push(`${s.remoteAddress}:${s.remotePort}`);
    snis.push(s.servername ?? false);
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        const body = `peer=${s.remoteAddress} sni=${s.servername}\n`;
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      }
    });
  });
  server.on('tlsClientError', () => {});
  const p = await listen(server, host, port);
  return { host, port: p, peers, snis, close: () => closeServer(server) };
}

/** Connects, sends `send` (optional), collects until the peer closes; resolves with what came back. */
export function tcpExchange(host: string, port: number, send?: Buffer | string, opts: { endAfterSend?: boolean; timeoutMs?: number; localAddress?: string } = {}): Promise<{ data: string; error?: string; closedBy: 'end' | 'error' | 'timeout' }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let done = false;
    const finish = (closedBy: 'end' | 'error' | 'timeout', error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closedBy, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 5000);
    s.on('connect', () => {
      if (send !== undefined) {
        if (opts.endAfterSend) s.end(send);
        else s.write(send);
      }
    });
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => finish('end'));
    s.on('close', () => finish('end'));
    s.on('error', (e: NodeJS.ErrnoException) => finish('error', e.code ?? e.message));
  });
}

/** Resolves when `pred` is true (polling), or rejects after timeoutMs. */
export async function waitFor<T>(fn: () => T | undefined | false, timeoutMs = 3000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `waitFor` for a predicate that must do I/O (a client run, a request): polls every 200 ms. */
export async function waitForAsync<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
