#!/usr/bin/env node
/** Process entry point: real stdio, exit code, and a last-resort handler for bugs. */
import { readFileSync } from 'node:fs';
import { exitQuietlyOnClosedPipe } from './closed-pipe.js';
import { main } from './main.js';

const argv = process.argv.slice(2);
// `run` is a long-lived proxy whose stdout is its access log: what a closed log pipe does to it is
// the access-log sink's decision, not a reason to end the proxy here.
if (argv[0] !== 'run') {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
}

main(argv, {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  readStdin: () => readFileSync(0, 'utf8'),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tollgate: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
