/**
 * A throwaway PKI made with the openssl CLI (tests of TLS origination): a CA, server certificates
 * with a DNS SAN, client certificates (extendedKeyUsage clientAuth). EC P-256 keys: fast to make.
 * Also `startOpensslServer`: `openssl s_server -www` requiring a client certificate (-Verify 1),
 * killed by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './tools.js';

export interface Pki {
  readonly dir: string;
  ca(name: string): Promise<{ cert: string; key: string }>;
  /** A leaf signed by CA `caName`; returns file paths. */
  leaf(name: string, caName: string, opts: { dns?: string; ip?: string; client?: boolean }): Promise<{ cert: string; key: string }>;
  /** An intermediate CA (CA:TRUE, keyCertSign) signed by CA `caName`; returns file paths. */
  intermediate(name: string, caName: string): Promise<{ cert: string; key: string }>;
  read(path: string): string;
  cleanup(): void;
}

async function ossl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 20_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'tg-pki-'));
  const p = (n: string): string => join(dir, n);
  return {
    dir,
    async ca(name) {
      await ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`), '-subj', `/CN=${name}`, '-days', '2']);
      return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
    },
    async leaf(name, caName, opts) {
      const sans = [opts.dns ? `DNS:${opts.dns}` : '', opts.ip ? `IP:${opts.ip}` : ''].filter(Boolean).join(',');
      const ext = [sans ? `subjectAltName=${sans}` : '', opts.client ? 'extendedKeyUsage=clientAuth' : 'extendedKeyUsage=serverAuth'].filter(Boolean).join('\n');
      writeFileSync(p(`${name}.ext`), ext + '\n');
      await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${opts.dns ?? name}`]);
      await ossl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.crt`), '-CAkey', p(`${caName}.key`), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)]);
      return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
    },
    async intermediate(name, caName) {
      writeFileSync(p(`${name}.ext`), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
      await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/O=${name}`]);
      await ossl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.crt`), '-CAkey', p(`${caName}.key`), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)]);
      return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
    },
    read: (path) => readFileSync(path, 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface OpensslServer {
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** `openssl s_server -www` on host:port with `cert`/`key`, requiring a client cert signed by `clientCa`. */
export async function startOpensslServer(host: string, port: number, cert: string, key: string, clientCa: string): Promise<OpensslServer> {
  const child = spawn('openssl', ['s_server', '-accept', `${host}:${port}`, '-cert', cert, '-key', key, '-CAfile', clientCa, '-Verify', '1', '-verify_return_error', '-www'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!out.includes('ACCEPT')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`openssl s_server did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await exited;
    },
  };
}
