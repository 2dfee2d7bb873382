#!/usr/bin/env node
/** Process entry point: real stdio, exit code, and a last-resort handler for bugs. */
import { readFileSync } from 'node:fs';
import { exitQuietlyOnClosedPipe } from './closed-pipe.js';
import { main } from './main.js';
import { tuneHeapForServing } from './serving-heap.js';

const argv = process.argv.slice(2);
// `run` is a long-lived proxy whose stdout is its access log: what a closed log pipe does to it is
// the access-log sink's decision, not a reason to end the proxy here.
if (argv[0] !== 'run') {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
} else {
  // Before the data plane's modules load: their allocation would already grow the young generation.
  tuneHeapForServing();
  // A reader that went away (EPIPE) must not take the proxy down: the access log and the diagnostic
  // logger check and drop (see log-sink.ts); these listeners keep the error from being uncaught.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
}

main(argv, {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  readStdin: () => readFileSync(0, 'utf8'),
}).then(
  (code) => {
    process.exitCode = code;
    // A proxy that has stopped serving does not wait for a stuck log reader to take its last lines.
    if (process.argv[2] === 'run') setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`tollgate: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
