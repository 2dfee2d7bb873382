/** -o json|yaml|text rendering shared by the commands. */
import { stringify } from 'yaml';
import { UsageError } from './common.js';

export type OutputFormat = 'json' | 'yaml' | 'text';

export function outputFormat(v: string | undefined, dflt: OutputFormat): OutputFormat {
  const f = v ?? dflt;
  if (f !== 'json' && f !== 'yaml' && f !== 'text') throw new UsageError(`-o must be json, yaml or text, got "${f}"`);
  return f;
}

export function render(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : stringify(value, { lineWidth: 0 });
}
