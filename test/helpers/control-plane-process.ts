/**
 * `tollgate control-plane` as a child process, as a user runs it (optionally inside a network
 * namespace: `prefix` e.g. ['ip', 'netns', 'exec', NS]). Stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './net.js';
import { BIN } from './tollgate.js';

export interface ControlPlaneProcess {
  readonly child: ChildProcess;
  /** The port it serves on. */
  readonly port: number;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `tollgate control-plane ARGS` (give --listen; default 127.0.0.1:0) and resolves once it serves. */
export async function startControlPlaneProcess(args: readonly string[], prefix: readonly string[] = [], env: Record<string, string> = {}): Promise<ControlPlaneProcess> {
  const full = args.includes('--listen') ? [...args] : ['--listen', '127.0.0.1:0', ...args];
  const argv = [process.execPath, BIN, 'control-plane', ...full];
  const opts = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[], env: { ...process.env, ...env } };
  const child = prefix.length > 0 ? spawn(prefix[0]!, [...prefix.slice(1), ...argv], opts) : spawn(argv[0]!, argv.slice(1), opts);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  };
  const serving = /serving (?:\d+ objects )?on [^\s;]+:(\d+)/;
  try {
    await waitFor(() => serving.test(stderr) || child.exitCode !== null, 30_000, 'control plane listening');
  } catch (err) {
    await stop();
    throw err;
  }
  const port = Number(serving.exec(stderr)?.[1]);
  if (!(port > 0)) {
    await stop();
    throw new Error(`the control plane did not start: ${stderr}`);
  }
  return { child, port, stderr: () => stderr, stop };
}
