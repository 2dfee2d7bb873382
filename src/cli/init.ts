/**
 * `tollgate init`: istio-init's job — write the sidecar's traffic-capture rules into the current
 * network namespace, from istio-iptables' flags. Argument parsing only (capture/).
 */
import { applyCapture, cleanupCapture, detectBackend, rulesText, type Backend } from '../capture/apply.js';
import { DEFAULT_CAPTURE, tproxyRouteCommands, type CaptureOptions } from '../capture/rules.js';
import { UsageError, type Io } from './common.js';

export const INIT_USAGE = `usage: tollgate init [options]

Writes the sidecar's capture rules (as istio-init / istio-iptables does) into the current network
namespace: outbound TCP to the proxy port, inbound TCP to the inbound port, the proxy's own uid/gid
exempt. Run it in the pod's network namespace as root (or with CAP_NET_ADMIN).

  -p PORT        outbound capture port (default 15001)
  -z PORT        inbound capture port (default 15006)
  -u UID         proxy uid whose traffic is not captured (default 1337)
  -g GID         proxy gid (default: the uid)
  -m MODE        REDIRECT (default) or TPROXY
  -i CIDRS       outbound destinations to capture, comma-separated; '*' = all (default)
  -x CIDRS       outbound destinations never captured (default none)
  -b PORTS       inbound ports to capture; '*' = all (default)
  -d PORTS       inbound ports never captured (default 15090,15021,15020; 15008 and 22 always)
  -o PORTS       outbound ports never captured (default none)
  --backend nftables|iptables  (default: nftables when 'nft' works here, else iptables)
  --dry-run      print the rules instead of writing them
  --cleanup      remove the rules (and the TPROXY routing) this command writes
`;

function ports(v: string, flag: string): number[] {
  if (v.trim() === '') return [];
  return v.split(',').map((p) => {
    const t = p.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 65535) throw new UsageError(`${flag} ${JSON.stringify(p)}: expected a port`);
    return Number(t);
  });
}

function list(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

const CIDR = /^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/;

function cidrs(v: string, flag: string): string[] {
  const out = list(v);
  for (const c of out) if (c !== '*' && !CIDR.test(c)) throw new UsageError(`${flag} ${JSON.stringify(c)}: expected an IPv4 CIDR or '*'`);
  return out;
}

export interface InitArgs {
  readonly options: CaptureOptions;
  readonly backend: Backend | undefined;
  readonly dryRun: boolean;
  readonly cleanup: boolean;
}

export function parseInitArgs(argv: readonly string[]): InitArgs {
  let o: CaptureOptions = DEFAULT_CAPTURE;
  let gidSet = false;
  let backend: Backend | undefined;
  let dryRun = false;
  let cleanup = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const one = (f: string): number => {
      const [p] = ports(next(), f);
      if (p === undefined) throw new UsageError(`${f} needs a value`);
      return p;
    };
    switch (flag) {
      case '-p': o = { ...o, proxyPort: one(flag) }; break;
      case '-z': o = { ...o, inboundPort: one(flag) }; break;
      case '-u': {
        const v = next();
        if (!/^\d+$/.test(v)) throw new UsageError(`-u ${v}: expected a numeric uid`);
        o = { ...o, proxyUid: Number(v), ...(gidSet ? {} : { proxyGid: Number(v) }) };
        break;
      }
      case '-g': {
        const v = next();
        if (!/^\d+$/.test(v)) throw new UsageError(`-g ${v}: expected a numeric gid`);
        o = { ...o, proxyGid: Number(v) };
        gidSet = true;
        break;
      }
      case '-m': {
        const v = next();
        if (v !== 'REDIRECT' && v !== 'TPROXY') throw new UsageError(`-m ${v}: expected REDIRECT or TPROXY`);
        o = { ...o, mode: v };
        break;
      }
      case '-i': o = { ...o, includeOutboundCidrs: cidrs(next(), flag) }; break;
      case '-x': o = { ...o, excludeOutboundCidrs: cidrs(next(), flag) }; break;
      case '-b': {
        const v = list(next());
        if (!v.includes('*')) ports(v.join(','), flag);
        o = { ...o, includeInboundPorts: v };
        break;
      }
      case '-d': o = { ...o, excludeInboundPorts: ports(next(), flag) }; break;
      case '-o': o = { ...o, excludeOutboundPorts: ports(next(), flag) }; break;
      case '--backend': {
        const v = next();
        if (v !== 'nftables' && v !== 'iptables') throw new UsageError(`--backend ${v}: expected nftables or iptables`);
        backend = v;
        break;
      }
      case '--dry-run': dryRun = true; break;
      case '--cleanup': cleanup = true; break;
      default: throw new UsageError(`unknown option ${flag}`);
    }
  }
  return { options: o, backend, dryRun, cleanup };
}

export function initCommand(argv: string[], io: Io): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    io.out(INIT_USAGE);
    return 0;
  }
  const args = parseInitArgs(argv);
  const backend = args.backend ?? (args.dryRun ? 'iptables' : detectBackend());
  if (args.dryRun) {
    if (args.cleanup) {
      io.out(backend === 'nftables' ? '# nft delete table ip tollgate_capture' : '# iptables -t nat -D/-F/-X the ISTIO_* chains');
      return 0;
    }
    io.out(rulesText(backend, args.options).trimEnd());
    if (args.options.mode === 'TPROXY') for (const c of tproxyRouteCommands()) io.out(`# ${c.join(' ')}`);
    return 0;
  }
  const r = args.cleanup ? cleanupCapture(backend) : applyCapture(backend, args.options);
  if (!r.ok) {
    io.err(`tollgate init: ${r.detail}`);
    return 1;
  }
  io.out(`tollgate init: ${args.cleanup ? 'removed the capture rules' : `capture rules written (${backend}, ${args.options.mode})`}`);
  return 0;
}
