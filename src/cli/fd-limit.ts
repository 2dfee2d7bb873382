/**
 * Open-file limits for `tollgate run`. Every proxied connection costs two descriptors (downstream
 * and upstream), and a process at its limit cannot even accept the admin `/ready` probe. So at
 * start the soft limit is raised to the hard one (Node has no setrlimit; util-linux `prlimit` on
 * our own pid does it), and the downstream connections of all listeners together get a budget that
 * leaves `RESERVED_FDS` for the admin API, DNS sockets, config files and logs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Descriptors kept out of the connection budget: admin, DNS, files, logs, mirror/health sockets. */
export const RESERVED_FDS = 128;

export interface FdLimits {
  readonly soft: number;
  readonly hard: number;
}

/** The current RLIMIT_NOFILE of this process (Infinity for "unlimited"); undefined when unknown. */
export function readFdLimits(): FdLimits | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    const n = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/** Raises the soft limit to the hard limit; returns the limits after, and why not when it could not. */
export function raiseFdLimit(): { limits: FdLimits | undefined; raisedFrom?: number; problem?: string } {
  const before = readFdLimits();
  if (!before || before.soft >= before.hard) return { limits: before };
  const target = before.hard === Infinity ? 'unlimited' : String(before.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${target}`], { stdio: 'ignore', timeout: 5000 });
  } catch (e) {
    return { limits: before, problem: `cannot raise the open-file limit from ${before.soft} to ${before.hard} with prlimit (util-linux): ${e instanceof Error ? e.message : String(e)}` };
  }
  const after = readFdLimits();
  return after && after.soft > before.soft ? { limits: after, raisedFrom: before.soft } : { limits: after ?? before, problem: `prlimit did not raise the open-file limit (still ${before.soft})` };
}

/** Downstream connections all listeners together may hold under `soft` open files. */
export function connectionBudget(soft: number): number {
  if (soft === Infinity) return Number.MAX_SAFE_INTEGER;
  return Math.max(1, Math.floor((soft - RESERVED_FDS) / 2));
}
