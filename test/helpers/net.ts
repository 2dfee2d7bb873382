/**
 * Peers for data-plane tests: TCP echo servers that report the peer address they saw (source-IP
 * proof), TLS servers with certificates made by `openssl req`, clients that collect what they get.
 * Every server binds a loopback address; tests pick distinct 127.x.y.z addresses so they can bind
 * the ports a config names (443, 80) side by side (any 127/8 address is local on Linux).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';

/** Claims of 127.B.0.0/16 blocks, one file per block holding the owner's PID, shared by every test process on the machine. */
const LOOPBACK_CLAIMS = join(tmpdir(), 'tollgate-test-loopback');
/** 127.0.0.0/16 stays for the tests' fixed 127.0.0.x addresses. */
const FIRST_BLOCK = 1;
const LAST_BLOCK = 254;

let block: number | undefined;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates the claim file for block `b`, taking it over when the process that held it is gone. */
function tryClaim(b: number): boolean {
  const file = join(LOOPBACK_CLAIMS, String(b));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      process.once('exit', () => rmSync(file, { force: true }));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(readFileSync(file, 'utf8'));
    // A claim being written reads as 0: another process is taking the block right now.
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * This test process's own 127.B.0.0/16 block: every test process on the machine (parallel test
 * files, and other checkouts' test runs) claims a different B, so addresses from it never collide
 * and a fixed port on them is safe. The claim is released when the process exits.
 */
export function loopbackBlock(): string {
  if (block === undefined) {
    mkdirSync(LOOPBACK_CLAIMS, { recursive: true });
    const span = LAST_BLOCK - FIRST_BLOCK + 1;
    const start = process.pid % span;
    for (let i = 0; i < span && block === undefined; i++) {
      const b = FIRST_BLOCK + ((start + i) % span);
      if (tryClaim(b)) block = b;
    }
    if (block === undefined) throw new Error(`loopbackBlock: all ${span} blocks are claimed (${LOOPBACK_CLAIMS})`);
  }
  return `127.${block}`;
}

/** loopbackAddress() hands out 127.B.0.1 to 127.B.(this - 1).254; the rest of the block is for fixed sub-addresses (127.B.203.25). */
const DYNAMIC_THIRD_OCTETS = 192;
let handedOut = 0;
/** A fresh loopback address per call in this process's own block (127.B.x.y). */
export function loopbackAddress(): string {
  const n = handedOut++;
  if (n >= DYNAMIC_THIRD_OCTETS * 254) throw new Error('loopbackAddress: block exhausted');
  return `${loopbackBlock()}.${Math.floor(n / 254)}.${(n % 254) + 1}`;
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
