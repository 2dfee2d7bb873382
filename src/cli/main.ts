/** The `tollgate` command: dispatches to one subcommand; each lives in its own module. */
import { nearest } from '../config/suggest.js';
import { analyzeCommand } from './analyze.js';
import { UsageError, type Io } from './common.js';
import { configDumpCommand } from './config-dump.js';
import { controlPlaneCommand } from './control-plane.js';
import { genCommand } from './gen.js';
import { suggestCommand } from './suggest.js';
import { manifestCommand } from './manifest.js';
import { initCommand } from './init.js';
import { injectCommand } from './inject.js';
import { proxyConfigCommand, proxyStatusCommand } from './proxy-status.js';
import { traceCommand } from './trace.js';

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

const COMMANDS: Record<string, Command | (() => Promise<Command>)> = {
  analyze: analyzeCommand,
  'config-dump': configDumpCommand,
  trace: traceCommand,
  'control-plane': controlPlaneCommand,
  'proxy-status': proxyStatusCommand,
  'proxy-config': proxyConfigCommand,
  gen: genCommand,
  suggest: suggestCommand,
  manifest: manifestCommand,
  init: initCommand,
  inject: injectCommand,
};

/** `run` is loaded lazily: analyze/trace should not pay for the data plane's modules. */
async function loadRun(): Promise<Command> {
  const path = './run.js'; // a variable keeps the import lazy (and out of analyze's module graph)
  const mod = (await import(path)) as { runCommand: Command };
  return mod.runCommand;
}

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
    const command = cmd === 'run' ? await loadRun() : COMMANDS[cmd];
    if (!command) {
      const near = nearest(cmd, ['run', ...Object.keys(COMMANDS)]);
      io.err(`tollgate: unknown command "${cmd}"${near ? `; did you mean "${near}"?` : ''}\n\n${HELP}`);
      return 2;
    }
    return await (command as Command)(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`tollgate ${cmd}: ${err.message} (see 'tollgate ${cmd} --help')`);
      return 2;
    }
    throw err;
  }
}

