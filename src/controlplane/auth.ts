/**
 * Who is on the other end of a control-plane stream. A proxy presents a bearer token; the control
 * plane maps it to a principal (namespace + service account) with one of:
 * - bootstrap tokens: a file of `TOKEN NAMESPACE SERVICE_ACCOUNT` lines (`--bootstrap-tokens`);
 * - Kubernetes TokenReview: the pod's service-account token, checked by the API server
 *   (`system:serviceaccount:NS:SA`), answers cached briefly so a reconnect storm is not a review storm.
 * The principal's namespace, never the proxy's claim, decides which snapshot and which Secrets it gets.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

export interface Principal {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** How it was established, for logs: "bootstrap-token" or "tokenreview". */
  readonly via: string;
}

export interface Authenticator {
  /** The principal for this token, or undefined when the token is not valid. */
  authenticate(token: string): Promise<Principal | undefined>;
}

/** The bearer token of a request (Authorization: Bearer ...), or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ \t]+([!-~]+)[ \t]*$/i.exec(h);
  return m?.[1];
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Tokens from a file; compared in constant time (over their SHA-256, so lengths leak nothing). */
export class BootstrapTokens implements Authenticator {
  private constructor(private readonly entries: readonly { readonly hash: Buffer; readonly principal: Principal }[]) {}

  /** Parses `TOKEN NAMESPACE SERVICE_ACCOUNT` lines; `#` comments and blank lines are skipped. Throws naming file:line. */
  static parse(text: string, file: string): BootstrapTokens {
    const entries: { hash: Buffer; principal: Principal }[] = [];
    const seen = new Set<string>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') return;
      const where = `${file}:${i + 1}`;
      const parts = line.split(/\s+/);
      if (parts.length !== 3) throw new Error(`${where}: expected "TOKEN NAMESPACE SERVICE_ACCOUNT", got ${parts.length} fields`);
      const [token, namespace, serviceAccount] = parts as [string, string, string];
      if (token.length < 16) throw new Error(`${where}: token is shorter than 16 characters; use e.g. "openssl rand -hex 32"`);
      if (!NAME.test(namespace)) throw new Error(`${where}: "${namespace}" is not a namespace name`);
      if (!NAME.test(serviceAccount)) throw new Error(`${where}: "${serviceAccount}" is not a service account name`);
      if (seen.has(token)) throw new Error(`${where}: this token is already listed above`);
      seen.add(token);
      entries.push({ hash: digest(token), principal: { namespace, serviceAccount, via: 'bootstrap-token' } });
    });
    if (entries.length === 0) throw new Error(`${file}: no tokens (one "TOKEN NAMESPACE SERVICE_ACCOUNT" per line)`);
    return new BootstrapTokens(entries);
  }

  static fromFile(file: string): BootstrapTokens {
    return BootstrapTokens.parse(readFileSync(file, 'utf8'), file);
  }

  authenticate(token: string): Promise<Principal | undefined> {
    const h = digest(token);
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, h)) found = e.principal;
    return Promise.resolve(found);
  }
}

/** POSTs a TokenReview and returns the API server's `status` (the transport is the caller's). */
export type TokenReviewer = (token: string) => Promise<{ authenticated?: boolean; user?: { username?: string } } | undefined>;

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** Kubernetes service-account tokens, verified by TokenReview; answers cached for `ttlMs`. */
export class TokenReviewAuthenticator implements Authenticator {
  private readonly cache = new Map<string, { principal: Principal | undefined; until: number }>();

  constructor(private readonly review: TokenReviewer, private readonly ttlMs = 60_000, private readonly maxCached = 10_000) {}

  async authenticate(token: string): Promise<Principal | undefined> {
    const key = digest(token).toString('hex');
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.principal;
    let principal: Principal | undefined;
    try {
      const status = await this.review(token);
      const m = status?.authenticated === true ? SA_USER.exec(status.user?.username ?? '') : null;
      if (m) principal = { namespace: m[1]!, serviceAccount: m[2]!, via: 'tokenreview' };
    } catch {
      // The API server is unreachable: refuse now, do not cache, the proxy retries.
      return undefined;
    }
    if (this.cache.size >= this.maxCached) this.cache.clear();
    this.cache.set(key, { principal, until: Date.now() + this.ttlMs });
    return principal;
  }
}

/** The first authenticator that knows the token wins. */
export function anyOf(...all: readonly Authenticator[]): Authenticator {
  return {
    async authenticate(token) {
      for (const a of all) {
        const p = await a.authenticate(token);
        if (p) return p;
      }
      return undefined;
    },
  };
}
