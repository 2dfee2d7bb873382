/**
 * Control-plane credentials for tests: a CA and a server certificate for 127.0.0.1 (openssl CLI),
 * and one bootstrap token per namespace, as files the CLI flags take and as the objects the
 * in-process ControlPlane / ControlPlaneClient take.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { BootstrapTokens } from '../../src/controlplane/auth.js';
import { makePki } from './pki.js';

export interface ControlPlaneAuth {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly tokensFile: string;
  /** `{ tls, authenticator }` for `new ControlPlane`. */
  readonly server: { readonly tls: { cert: Buffer; key: Buffer }; readonly authenticator: BootstrapTokens };
  token(namespace: string): string;
  tokenFile(namespace: string): string;
  /** `{ ca, token }` for `new ControlPlaneClient` in `namespace`. */
  client(namespace: string): { ca: Buffer; token: () => string };
  /** `tollgate run --control-plane` flags for a proxy in `namespace`. */
  runArgs(namespace: string): string[];
  /** proxy-status / proxy-config flags. */
  readonly viewArgs: string[];
  /** `tollgate control-plane` flags. */
  readonly serverArgs: string[];
  cleanup(): void;
}

/** `ip`: the address the control plane's certificate names (default 127.0.0.1). */
export async function makeControlPlaneAuth(namespaces: readonly string[] = ['edge'], ip = '127.0.0.1'): Promise<ControlPlaneAuth> {
  const pki = makePki();
  const ca = await pki.ca('cp-ca');
  const leaf = await pki.leaf('control-plane', 'cp-ca', { ip, dns: 'localhost' });
  const tokens = new Map(namespaces.map((ns) => [ns, randomBytes(24).toString('hex')]));
  const tokensFile = join(pki.dir, 'tokens');
  writeFileSync(tokensFile, ['# TOKEN NAMESPACE SERVICE_ACCOUNT', ...[...tokens].map(([ns, t]) => `${t} ${ns} tollgate-proxy`)].join('\n') + '\n');
  for (const [ns, t] of tokens) writeFileSync(join(pki.dir, `token-${ns}`), t + '\n');
  const token = (ns: string): string => {
    const t = tokens.get(ns);
    if (t === undefined) throw new Error(`no token for namespace ${ns}`);
    return t;
  };
  const tokenFile = (ns: string): string => {
    token(ns);
    return join(pki.dir, `token-${ns}`);
  };
  const caPem = readFileSync(ca.cert);
  return {
    caFile: ca.cert,
    certFile: leaf.cert,
    keyFile: leaf.key,
    tokensFile,
    server: { tls: { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, authenticator: BootstrapTokens.fromFile(tokensFile) },
    token,
    tokenFile,
    client: (ns) => ({ ca: caPem, token: () => token(ns) }),
    runArgs: (ns) => ['--control-plane-ca', ca.cert, '--bootstrap-token-file', tokenFile(ns)],
    viewArgs: ['--control-plane-ca', ca.cert, '--token-file', tokenFile(namespaces[0]!)],
    serverArgs: ['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--bootstrap-tokens', tokensFile],
    cleanup: () => pki.cleanup(),
  };
}

/** GET over TLS verified with `ca`, with a bearer token when given; the body parsed as JSON when it is JSON. */
export function getJsonTls(port: number, path: string, ca: Buffer, token?: string): Promise<{ status: number; body: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {}, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown = undefined;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
