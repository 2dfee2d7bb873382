import { FileConfigSource } from '../controlplane/config-source.js';
import { ControlPlane } from '../controlplane/server.js';
import { parse, UsageError, type Io } from './common.js';

export const CONTROL_PLANE_HELP = `Usage: tollgate control-plane -f PATH... [--listen HOST:PORT] [--debounce MS] [--allow-empty-config]

Watches the config, validates it, compiles one snapshot per connected proxy and pushes it when it
changes (only to the proxies whose snapshot changed). Proxies connect with
'tollgate run --control-plane HOST:PORT <identity flags>' and ACK or NACK each version. An invalid
config is rejected with file:line and the last good one stays in force.

  -f, --file PATH         file or directory to watch (repeatable)
  --listen HOST:PORT      where proxies and views connect (default 127.0.0.1:15010)
  --debounce MS           wait this long after the last change before reloading (default 200)
  --allow-empty-config    accept a config with no objects replacing a non-empty one

Views (plain HTTP on the same address): /ready, /v1/proxies, /v1/proxies/<key>/snapshot, /v1/config.
See 'tollgate proxy-status' and 'tollgate proxy-config'.`;

export function parseHostPort(s: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`${flag} must be HOST:PORT, got "${s}"`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

export async function controlPlaneCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    file: { type: 'string', short: 'f', multiple: true },
    listen: { type: 'string' },
    debounce: { type: 'string' },
    'allow-empty-config': { type: 'boolean' },
    kubernetes: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(CONTROL_PLANE_HELP);
    return 0;
  }
  if (values.kubernetes) throw new UsageError('--kubernetes is not available yet: watch files with -f (see docs/control-plane.md)');
  if (!values.file?.length) throw new UsageError('control-plane needs -f PATH to watch');
  const { host, port } = parseHostPort(values.listen ?? '127.0.0.1:15010', '--listen');
  const debounceMs = values.debounce === undefined ? 200 : Number(values.debounce);
  if (!Number.isInteger(debounceMs) || debounceMs < 0) throw new UsageError('--debounce must be a whole number of milliseconds');
  const source = new FileConfigSource({ paths: values.file, debounceMs, allowEmpty: values['allow-empty-config'] === true });
  const first = source.reload();
  if (first.kind === 'rejected') {
    io.err(first.rejection.summary);
    io.err('the initial config has errors; not starting (fix them, or run tollgate analyze)');
    return 1;
  }
  const cp = new ControlPlane({ source, log: (l) => io.err(`control-plane: ${l}`) });
  const addr = await cp.listen(host, port);
  source.watch();
  io.err(`control-plane: serving ${first.config.model.resources.length} objects on ${addr.address}:${addr.port}; watching ${values.file.join(', ')}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      source.close();
      void cp.close().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
