import { formatDiagnostic } from '../config/diagnostics.js';
import { analyzePaths, fileSummaries } from '../analyze/analyze.js';
import { CONFIG_OPTIONS, parse, UsageError, type Io } from './common.js';
import { outputFormat, render } from './output.js';

export const ANALYZE_HELP = `Usage: tollgate analyze -f PATH... [-o text|json|yaml] [--quiet]

Validates every object and explains what the config will do, istioctl-analyze style: each message has
a stable code, a severity, the object, file:line and a one-line fix. Exit status 1 when an error is
found, 0 otherwise.

  -f, --file PATH   file, directory (recursive, *.yaml|*.yml|*.json) or - for stdin; repeatable
  -o, --output FMT  text (default), json or yaml
  --quiet           errors and warnings only (no info messages, no per-file summary)`;

export function analyzeCommand(argv: string[], io: Io): number {
  const { values } = parse(argv, { ...CONFIG_OPTIONS, quiet: { type: 'boolean' } });
  if (values.help) {
    io.out(ANALYZE_HELP);
    return 0;
  }
  if (!values.file?.length) throw new UsageError('analyze needs -f PATH (file, directory or -)');
  const format = outputFormat(values.output, 'text');
  const result = analyzePaths(values.file, io.readStdin);
  const shown = values.quiet ? result.diagnostics.filter((d) => d.severity !== 'info') : result.diagnostics;
  if (format !== 'text') {
    io.out(render(shown.map((d) => ({ ...d, ...(d.pos ?? d.resource?.pos ? { location: `${(d.pos ?? d.resource?.pos)?.file}:${(d.pos ?? d.resource?.pos)?.line}` } : {}) })), format));
  } else {
    for (const d of shown) io.out(formatDiagnostic(d));
    if (!values.quiet) {
      if (shown.length > 0) io.out('');
      for (const line of fileSummaries(result)) io.out(line);
    }
    const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
    const warnings = result.diagnostics.filter((d) => d.severity === 'warning').length;
    io.out(`${result.resources.length} object(s) in ${result.files.length} file(s): ${errors} error(s), ${warnings} warning(s)`);
  }
  return result.failed ? 1 : 0;
}
