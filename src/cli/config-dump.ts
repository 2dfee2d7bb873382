import { buildSnapshot } from '../snapshot/build.js';
import { redactSnapshot } from '../snapshot/secrets.js';
import { CONFIG_OPTIONS, IDENTITY_HELP, IDENTITY_OPTIONS, identityFrom, loadConfig, parse, type Io } from './common.js';
import { outputFormat, render } from './output.js';

export const CONFIG_DUMP_HELP = `Usage: tollgate config-dump -f PATH... [identity flags] [-o json|yaml]

Prints the snapshot one proxy would run: listeners, route tables, clusters and endpoints, in the
shape of Envoy's xDS resources, with the file:line each element came from.

${IDENTITY_HELP}`;

export function configDumpCommand(argv: string[], io: Io): number {
  const { values } = parse(argv, { ...CONFIG_OPTIONS, ...IDENTITY_OPTIONS });
  if (values.help) {
    io.out(CONFIG_DUMP_HELP);
    return 0;
  }
  const format = outputFormat(values.output, 'json');
  const loaded = loadConfig(values.file, io.err);
  if (!loaded) return 1;
  const identity = identityFrom(values, loaded.model, io.err);
  const snapshot = buildSnapshot(loaded.model, identity);
  io.out(render(redactSnapshot(snapshot), format === 'text' ? 'yaml' : format));
  return 0;
}
