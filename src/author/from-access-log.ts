/**
 * Tollgate's JSON access log -> what `suggest` needs: the external destinations traffic asked for.
 *
 * By default only records whose reason says "not in the registry" count (the would-be denials of
 * report-only mode and the real denials of enforcing proxies); `all` takes every record that names
 * a destination. Protocol, from what the record shows: a CONNECT is TLS (HTTPS_PROXY clients
 * tunnel TLS), a request with a Host is HTTP, a connection with an SNI is TLS, anything else is TCP
 * by address. The log has no caller namespace, so the evidence lists caller addresses.
 */
import { normalizeHost, splitHostPort } from '../net/hostname.js';
import type { Seen, SeenProtocol } from './suggest.js';

export const REGISTRY_REASONS: ReadonlySet<string> = new Set(['would_deny_registry', 'connect_not_in_registry', 'proxy_not_in_registry', 'registry_only']);

export interface LogProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

interface Rec {
  readonly start_time?: unknown;
  readonly method?: unknown;
  readonly authority?: unknown;
  readonly requested_server_name?: unknown;
  readonly upstream_host?: unknown;
  readonly downstream_local_address?: unknown;
  readonly downstream_remote_address?: unknown;
  readonly tollgate_reason?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function addressOf(v: unknown): { host: string; port: number } | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const hp = splitHostPort(s, 0);
  return hp.ok && hp.port > 0 ? { host: hp.host.replace(/^\[|\]$/g, ''), port: hp.port } : undefined;
}

/** The destination a record asked for, or undefined when it names none. */
export function destinationOf(r: Rec): { host: string; port: number; protocol: SeenProtocol } | undefined {
  const method = str(r.method);
  const authority = str(r.authority);
  const local = addressOf(r.downstream_local_address);
  const norm = (h: string): string | undefined => {
    const n = normalizeHost(h);
    return n.ok ? n.host : undefined;
  };
  if (method !== undefined && authority !== undefined) {
    const hp = splitHostPort(authority, 0);
    if (!hp.ok) return undefined;
    const host = norm(hp.host);
    if (host === undefined) return undefined;
    if (method === 'CONNECT') return hp.port > 0 ? { host, port: hp.port, protocol: 'TLS' } : undefined;
    return { host, port: hp.port > 0 ? hp.port : 80, protocol: 'HTTP' };
  }
  const sni = str(r.requested_server_name);
  if (sni !== undefined && local !== undefined) {
    const host = norm(sni);
    return host === undefined ? undefined : { host, port: local.port, protocol: 'TLS' };
  }
  const target = addressOf(r.upstream_host) ?? local;
  return target === undefined ? undefined : { host: target.host, port: target.port, protocol: 'TCP' };
}

/** Parses JSON-lines text; non-JSON lines are reported (file:line), not fatal. */
export function seenFromAccessLog(text: string, file: string, all: boolean, problems: LogProblem[]): Seen[] {
  const out: Seen[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let r: Rec;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      r = v as Rec;
    } catch {
      if (problems.length < 20) problems.push({ file, line: i + 1, message: 'not a JSON access-log record (use --access-log-format json)' });
      continue;
    }
    if (!all && !REGISTRY_REASONS.has(str(r.tollgate_reason) ?? '')) continue;
    const d = destinationOf(r);
    if (d === undefined) continue;
    const t = str(r.start_time) ?? '';
    const caller = addressOf(r.downstream_remote_address)?.host;
    out.push({ ...d, count: 1, firstSeen: t, lastSeen: t, callers: caller !== undefined ? [caller] : [] });
  }
  return out;
}
