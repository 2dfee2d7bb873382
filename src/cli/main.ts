/** The `tollgate` command: dispatches to one subcommand; each lives in its own module. */
import { nearest } from '../config/suggest.js';
import { UsageError, type Io } from './args.js';

const HELP = `Usage: tollgate <command> [options]

Egress and ingress gateway, sidecar proxy and control plane that reads Istio's own configuration.

Commands:
  run          run a proxy (gateway, sidecar or egress router) on a config
  analyze      validate config and explain problems, with file:line and a fix
  config-dump  print the snapshot (listeners, routes, clusters, endpoints) one proxy would run
  trace        simulate one request through one proxy and show every decision
  control-plane  watch config and push per-proxy snapshots to connected proxies (ACK/NACK)
  proxy-status   one row per proxy connected to a control plane: version, SYNCED/STALE/NACKED
  proxy-config   the listeners, routes, clusters or endpoints a proxy runs
  gen egress     print the objects that send one external host through the egress gateway
  suggest        write ServiceEntries (and gateway objects) for the egress traffic a proxy observed
  manifest     generate Kubernetes manifests (control plane, gateways, egress router, CRDs)
  init         write a sidecar's traffic-capture rules into this network namespace (istio-init)
  inject       print a manifest with the sidecar injected into its pods (istioctl kube-inject)

Run 'tollgate <command> --help' for a command's options. Docs: docs/ in the repository.`;

type Command = (argv: string[], io: Io) => number | Promise<number>;

/**
 * Each command's module is loaded when it runs: a proxy (`run`) holds none of analyze's, the
 * authoring tools' or the Kubernetes client's code in memory, and analyze none of the data plane's.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.js')).runCommand,
  analyze: async () => (await import('./analyze.js')).analyzeCommand,
  'config-dump': async () => (await import('./config-dump.js')).configDumpCommand,
  trace: async () => (await import('./trace.js')).traceCommand,
  'control-plane': async () => (await import('./control-plane.js')).controlPlaneCommand,
  'proxy-status': async () => (await import('./proxy-status.js')).proxyStatusCommand,
  'proxy-config': async () => (await import('./proxy-status.js')).proxyConfigCommand,
  gen: async () => (await import('./gen.js')).genCommand,
  suggest: async () => (await import('./suggest.js')).suggestCommand,
  manifest: async () => (await import('./manifest.js')).manifestCommand,
  init: async () => (await import('./init.js')).initCommand,
  inject: async () => (await import('./inject.js')).injectCommand,
};

export async function main(argv: string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.out(HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === '--version') {
    io.out('tollgate 0.1.0');
    return 0;
  }
  try {
    const load = COMMANDS[cmd];
    if (!load) {
      const near = nearest(cmd, Object.keys(COMMANDS));
      io.err(`tollgate: unknown command "${cmd}"${near ? `; did you mean "${near}"?` : ''}\n\n${HELP}`);
      return 2;
    }
    return await (await load())(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`tollgate ${cmd}: ${err.message} (see 'tollgate ${cmd} --help')`);
      return 2;
    }
    throw err;
  }
}

