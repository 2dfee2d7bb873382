/**
 * Argument helpers every command shares, with no config code behind them: `main` and `run` load
 * this without the YAML parsers and the config pipeline that common.ts brings.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

/** Where a command writes; tests pass their own to capture output without spawning a process. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  readStdin?: () => string;
}

export function parse<O extends ParseArgsConfig['options']>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--labels: "${pair}" is not key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}
