/**
 * The control plane's own TLS certificate, issued by its CA when no --tls-cert is given: proxies
 * then need only the root (--control-plane-ca). Renewed at ~80% of its life and re-issued at once
 * when the CA changes, so the certificate served always chains to a root proxies were told about.
 */
import { isIP } from 'node:net';
import type { CertificateAuthority } from './authority.js';

export interface ServerTls {
  readonly cert: string;
  readonly key: string;
}

export interface ServerCertificate {
  readonly first: ServerTls;
  stop(): void;
}

/** Issues the first certificate, then calls `apply` with each renewed one. `names`: DNS names and IPs. */
export async function keepServerCertificate(ca: CertificateAuthority, names: readonly string[], lifetimeMs: number, apply: (tls: ServerTls) => void, log: (line: string) => void): Promise<ServerCertificate> {
  const dns = names.filter((n) => isIP(n) === 0);
  const ips = names.filter((n) => isIP(n) !== 0);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const issue = async (): Promise<ServerTls> => {
    const issued = await ca.issueServer(dns, ips, lifetimeMs);
    const renewIn = Math.max(1000, (issued.notAfter.getTime() - Date.now()) * 0.8);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void renew(), renewIn);
    timer.unref();
    return { cert: issued.certChainPem, key: issued.keyPem };
  };
  const renew = async (): Promise<void> => {
    if (stopped) return;
    try {
      apply(await issue());
    } catch (err) {
      log(`CA: could not renew the control plane's certificate (${err instanceof Error ? err.message : String(err)}); retrying in 10 s`);
      timer = setTimeout(() => void renew(), 10_000);
      timer.unref();
    }
  };
  const first = await issue();
  const unsubscribe = ca.onChange(() => void renew());
  log(`CA: serving a certificate for ${names.join(', ')} issued by the CA`);
  return {
    first,
    stop() {
      stopped = true;
      unsubscribe();
      if (timer) clearTimeout(timer);
    },
  };
}

/** The names a control plane listening on `host` is reached by, when none are given. */
export function defaultServerNames(host: string, extra: readonly string[]): string[] {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  return [...new Set([...extra, 'localhost', '127.0.0.1', '::1', ...(wildcard ? [] : [host])])];
}
