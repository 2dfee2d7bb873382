/**
 * DNS servers for tests: dnsmasq (the real one, as a child killed by PID) and a tiny programmable
 * UDP responder (A records with chosen TTLs, answers that change between queries, query counts) for
 * TTL-cache and rebinding tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:net';
import { loopbackAddress } from './net.js';
import { stopChild } from './tools.js';

export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

export interface Dnsmasq {
  /** "ADDRESS:PORT", the address from this process's own loopback block. */
  readonly server: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** dnsmasq answering `name -> address` (A or AAAA by address family), nothing else (no upstream). */
export async function startDnsmasq(records: Readonly<Record<string, string>>, ttlSec = 1): Promise<Dnsmasq> {
  // An address of this process's own block: dnsmasq binds the port on TCP too, and on 127.0.0.1 a
  // free UDP port may be a TCP port in use by another test process's connections.
  const host = loopbackAddress();
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort(host);
    const args = ['--no-daemon', `--port=${port}`, `--listen-address=${host}`, '--bind-interfaces', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', `--local-ttl=${ttlSec}`, '--log-facility=-'];
    for (const [name, addr] of Object.entries(records)) args.push(`--address=/${name}/${addr}`);
    const child: ChildProcess = spawn('dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(true), 300);
      child.once('exit', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (!ok) {
      if (/address already in use/i.test(err)) continue;
      throw new Error(`dnsmasq failed: ${err}`);
    }
    return {
      server: `${host}:${port}`,
      port,
      stop: () => stopChild(child),
    };
  }
  throw new Error('dnsmasq: no free port after 5 attempts');
}

export interface FakeDns {
  readonly server: string;
  /** Queries received per name (lower case). */
  readonly queries: Map<string, number>;
  /** name -> answer provider, called per query. Return [] for NXDOMAIN-like empty answer. */
  set(name: string, answer: () => { addresses: string[]; ttl: number } | 'nxdomain' | 'drop'): void;
  close(): Promise<void>;
}

/** Minimal authoritative responder for A queries (enough for node:dns / c-ares). */
export async function startFakeDns(): Promise<FakeDns> {
  const answers = new Map<string, () => { addresses: string[]; ttl: number } | 'nxdomain' | 'drop'>();
  const queries = new Map<string, number>();
  const sock: Socket = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const qd = msg.readUInt16BE(4);
    if (qd !== 1) return;
    let p = 12;
    const labels: string[] = [];
    while (p < msg.length && msg[p] !== 0) {
      const l = msg[p]!;
      labels.push(msg.toString('latin1', p + 1, p + 1 + l));
      p += 1 + l;
    }
    p += 1;
    const qtype = msg.readUInt16BE(p);
    const question = msg.subarray(12, p + 4);
    const name = labels.join('.').toLowerCase();
    queries.set(name, (queries.get(name) ?? 0) + 1);
    const provider = answers.get(name);
    const a = provider ? provider() : 'nxdomain';
    if (a === 'drop') return;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    const rcode = a === 'nxdomain' ? 3 : 0;
    header.writeUInt16BE(0x8180 | 0x0400 | rcode, 2); // response, RD, RA, AA
    header.writeUInt16BE(1, 4);
    const rrs: Buffer[] = [];
    if (a !== 'nxdomain' && qtype === 1) {
      for (const addr of a.addresses) {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0);
        rr.writeUInt16BE(1, 2);
        rr.writeUInt16BE(1, 4);
        rr.writeUInt32BE(a.ttl, 6);
        rr.writeUInt16BE(4, 10);
        addr.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
        rrs.push(rr);
      }
    }
    header.writeUInt16BE(rrs.length, 6);
    sock.send(Buffer.concat([header, question, ...rrs]), rinfo.port, rinfo.address);
  });
  const port = await new Promise<number>((resolve) => sock.bind(0, '127.0.0.1', () => resolve(sock.address().port)));
  return {
    server: `127.0.0.1:${port}`,
    queries,
    set: (name, answer) => answers.set(name.toLowerCase(), answer),
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  };
}
