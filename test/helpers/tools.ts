/**
 * System tools for integration tests: a test that needs one skips locally with a reason when it is
 * missing, and FAILS when CI=true.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';

const cache = new Map<string, boolean>();

export function haveTool(name: string): boolean {
  let v = cache.get(name);
  if (v === undefined) {
    v = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
    cache.set(name, v);
  }
  return v;
}

export const isCI = process.env['CI'] === 'true';
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Returns true when the test may proceed; otherwise skips it (or throws in CI). */
export function requireTools(t: TestContext, ...names: string[]): boolean {
  const missing = names.filter((n) => !haveTool(n));
  if (missing.length === 0) return true;
  const msg = `needs ${missing.join(', ')} (not installed)`;
  if (isCI) throw new Error(`${msg}; CI=true, so this is a failure`);
  t.skip(msg);
  return false;
}

export function requireRoot(t: TestContext, why: string): boolean {
  if (isRoot) return true;
  const msg = `needs root: ${why}`;
  if (isCI) throw new Error(`${msg}; CI=true, so this is a failure`);
  t.skip(msg);
  return false;
}

/**
 * Stops a child this test started: SIGTERM, then SIGKILL if it has not exited after `graceMs`, so a
 * peer that ignores or misses the SIGTERM cannot hang the test's cleanup. Resolves once it has exited.
 */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command asynchronously (never spawnSync a client against an in-process proxy: it would
 * block the event loop the proxy runs on). Killed after timeoutMs.
 */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
