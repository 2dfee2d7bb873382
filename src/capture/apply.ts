/**
 * Writes or removes the capture rules in the current network namespace, with nft when it works
 * here, else iptables-restore. Every command is run without a shell; a failure names the command
 * and its stderr.
 */
import { spawnSync } from 'node:child_process';
import { NFT_TABLE, iptablesRules, nftablesRules, tproxyRouteCommands, type CaptureOptions } from './rules.js';

export type Backend = 'nftables' | 'iptables';

export interface CommandResult {
  readonly ok: boolean;
  readonly detail: string;
}

function run(cmd: readonly string[], input?: string): CommandResult {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { input, encoding: 'utf8', timeout: 15_000 });
  if (r.error) return { ok: false, detail: `${cmd.join(' ')}: ${r.error.message}` };
  return { ok: r.status === 0, detail: r.status === 0 ? '' : `${cmd.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}` };
}

/** nftables when the nft command runs and can talk to the kernel; iptables otherwise. */
export function detectBackend(): Backend {
  return run(['nft', 'list', 'tables']).ok ? 'nftables' : 'iptables';
}

export function rulesText(backend: Backend, o: CaptureOptions): string {
  return backend === 'nftables' ? nftablesRules(o) : iptablesRules(o);
}

export function applyCapture(backend: Backend, o: CaptureOptions): CommandResult {
  const r = backend === 'nftables' ? run(['nft', '-f', '-'], nftablesRules(o)) : run(['iptables-restore', '--noflush'], iptablesRules(o));
  if (!r.ok || o.mode !== 'TPROXY') return r;
  for (const cmd of tproxyRouteCommands()) {
    const c = run(cmd);
    if (!c.ok) return c;
  }
  return r;
}

/** Removes what applyCapture wrote; missing pieces are not an error (cleanup is idempotent). */
export function cleanupCapture(backend: Backend): CommandResult {
  if (backend === 'nftables') {
    if (run(['nft', 'list', 'table', 'ip', NFT_TABLE]).ok) {
      const r = run(['nft', 'delete', 'table', 'ip', NFT_TABLE]);
      if (!r.ok) return r;
    }
  } else {
    for (const [table, jumps, chains] of [
      ['nat', [['PREROUTING', 'ISTIO_INBOUND'], ['OUTPUT', 'ISTIO_OUTPUT']], ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT']],
      ['mangle', [['PREROUTING', 'ISTIO_INBOUND']], ['ISTIO_INBOUND', 'ISTIO_DIVERT', 'ISTIO_TPROXY']],
    ] as const) {
      for (const [from, to] of jumps) while (run(['iptables', '-t', table, '-D', from, '-p', 'tcp', '-j', to]).ok);
      for (const c of chains) run(['iptables', '-t', table, '-F', c]);
      for (const c of chains) run(['iptables', '-t', table, '-X', c]);
    }
  }
  for (const cmd of tproxyRouteCommands()) run(cmd.map((x) => (x === 'add' ? 'del' : x)));
  return { ok: true, detail: '' };
}
