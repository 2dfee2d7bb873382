/**
 * Mesh workload certificates for tests: leaves with a SPIFFE URI SAN (server and client usage, as
 * Istio issues them) signed by a throwaway CA, written in the layout `tollgate run
 * --workload-cert-dir` reads (key.pem, cert-chain.pem, root-cert.pem).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pki } from './pki.js';
import { run } from './tools.js';

export interface MeshCert {
  readonly dir: string;
  readonly spiffeId: string;
  readonly cert: string;
  readonly key: string;
  readonly root: string;
}

/** A workload certificate for `spiffe://cluster.local/ns/NS/sa/SA` signed by CA `caName` of `pki`. */
export async function meshCert(pki: Pki, caName: string, ns: string, sa: string, dirName = `${ns}-${sa}`): Promise<MeshCert> {
  const spiffeId = `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
  const name = `mesh-${dirName}`;
  const p = (n: string): string => join(pki.dir, n);
  writeFileSync(p(`${name}.ext`), `subjectAltName=URI:${spiffeId}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  const ossl = async (args: string[]): Promise<void> => {
    const r = await run('openssl', args, { timeoutMs: 20_000 });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  await ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', '/O=cluster.local']);
  await ossl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.crt`), '-CAkey', p(`${caName}.key`), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)]);
  const dir = p(dirName);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'key.pem'), readFileSync(p(`${name}.key`)));
  writeFileSync(join(dir, 'cert-chain.pem'), readFileSync(p(`${name}.crt`)));
  writeFileSync(join(dir, 'root-cert.pem'), readFileSync(p(`${caName}.crt`)));
  return { dir, spiffeId, cert: join(dir, 'cert-chain.pem'), key: join(dir, 'key.pem'), root: join(dir, 'root-cert.pem') };
}
