/**
 * `tollgate config-dump ... | head -1`: the reader closes the pipe early and the next write to
 * stdout fails with EPIPE (Node ignores SIGPIPE, so the process is not killed by the signal as a C
 * tool would be). The command's output was wanted only up to there, so the process exits quietly
 * with status 0 rather than the shell's 128+SIGPIPE = 141: a script under `set -o pipefail` that
 * pipes a command into `head` does not fail because head stopped reading.
 */
export const CLOSED_PIPE_EXIT_CODE = 0;

/** Makes EPIPE on `stream` end the process quietly; any other stream error is still thrown. */
export function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(CLOSED_PIPE_EXIT_CODE);
    throw e;
  });
}
