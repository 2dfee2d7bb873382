/**
 * Runs Tollgate for a test: in-process (fast; access-log records collected from the logger) or as
 * a child process (`node dist/src/cli/bin.js run ...`, for signals and network namespaces).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AccessLogRecord } from '../../src/dataplane/observe/access-log.js';
import { parseRunArgs, startTollgate, type StartOverrides, type Tollgate } from '../../src/cli/run.js';
import { waitFor } from './net.js';

/** Repository root (this file runs from dist/test/helpers). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const BIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'bin.js');

export interface TestGate {
  readonly tg: Tollgate;
  readonly logs: AccessLogRecord[];
  /** Bound port of the snapshot listener with this (snapshot) port. */
  port(snapshotPort: number): number;
  waitForLog(pred: (r: AccessLogRecord) => boolean, timeoutMs?: number): Promise<AccessLogRecord>;
  metric(name: string, labelsSubstr?: string): number;
  stop(): Promise<void>;
}

/** `args` are `tollgate run` flags; admin is off unless given. Listeners bind 127.0.0.1 unless overridden. */
export async function startGate(args: readonly string[], overrides: StartOverrides = {}): Promise<TestGate> {
  const full = [...args];
  if (!full.includes('--admin')) full.push('--admin', 'off');
  if (!full.includes('--listen-address-override')) full.push('--listen-address-override', '127.0.0.1');
  if (!full.includes('--log-level')) full.push('--log-level', 'error');
  const opts = parseRunArgs(full);
  const logs: AccessLogRecord[] = [];
  const tg = await startTollgate(opts, { silentAccessLog: true, ...overrides });
  tg.services.accessLog.subscribe((r) => logs.push(r));
  return {
    tg,
    logs,
    port(p: number): number {
      const b = tg.runtime.boundPortOf(p);
      if (b === undefined) throw new Error(`no listener for snapshot port ${p}`);
      return b;
    },
    waitForLog: (pred, timeoutMs = 3000) => waitFor(() => logs.find(pred), timeoutMs, 'access log record'),
    metric(name: string, labelsSubstr = ''): number {
      let sum = 0;
      for (const line of tg.metrics.render().split('\n')) {
        if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
        if (!line.includes(labelsSubstr)) continue;
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return sum;
    },
    stop: () => tg.stop(200),
  };
}

/** `tollgate run` flags of an egress gateway (namespace egress, istio=egressgateway, port 80 on an ephemeral port). */
export const EGRESS_GATEWAY_ARGS: readonly string[] = ['--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', '80=0'];

/** `tollgate run` flags of the `edge` egress gateway (namespace edge, istio=egressgateway, port 80 on an ephemeral port). */
export const EDGE_GATEWAY_ARGS: readonly string[] = ['--role', 'gateway', '--namespace', 'edge', '--labels', 'istio=egressgateway', '--port-map', '80=0'];

/** `tollgate run` flags of the http-proxy egress router (app=egress-http-proxy in default, port 8080 on an ephemeral port). */
export const HTTP_PROXY_ROUTER_ARGS: readonly string[] = ['--role', 'router', '--namespace', 'default', '--labels', 'app=egress-http-proxy', '--port-map', '8080=0'];

/** Writes `yaml` to a temp config and starts a gate on it (`-f <config>` then `args`); the caller stops both. */
export async function startGateWithConfig(yaml: string, args: readonly string[], overrides: StartOverrides = {}): Promise<{ gate: TestGate; cfg: { path: string; cleanup(): void } }> {
  const cfg = tempConfig(yaml);
  try {
    return { gate: await startGate(['-f', cfg.path, ...args], overrides), cfg };
  } catch (e) {
    cfg.cleanup();
    throw e;
  }
}

/** Runs `fn` against a gate on a temp config holding `yaml`; stops the gate and removes the config afterwards. */
export async function withGateConfig<T>(yaml: string, args: readonly string[], fn: (gate: TestGate) => Promise<T>, overrides: StartOverrides = {}): Promise<T> {
  const { gate, cfg } = await startGateWithConfig(yaml, args, overrides);
  try {
    return await fn(gate);
  } finally {
    await gate.stop();
    cfg.cleanup();
  }
}

/** Writes YAML to a temp file; returns its path and a cleanup. */
export function tempConfig(yaml: string): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cfg-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, yaml);
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ChildGate {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Parsed JSON access-log lines. */
  records(): AccessLogRecord[];
  waitForStderr(substr: string, timeoutMs?: number): Promise<void>;
  exit(): Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `[prefix...] node dist/src/cli/bin.js run ...args` (prefix e.g. ['ip','netns','exec','ns']);
 * `env` is added to the environment; `bin` is another entry point (a bundle).
 */
export function spawnGate(args: readonly string[], prefix: readonly string[] = [], env: Record<string, string> = {}, bin = BIN): ChildGate {
  const cmd = prefix.length > 0 ? prefix[0]! : process.execPath;
  const argv = prefix.length > 0 ? [...prefix.slice(1), process.execPath, bin, 'run', ...args] : [bin, 'run', ...args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(Object.keys(env).length > 0 ? { env: { ...process.env, ...env } } : {}) });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let outBuf = '';
  child.stdout!.on('data', (d: Buffer) => {
    outBuf += d.toString();
    let i;
    while ((i = outBuf.indexOf('\n')) >= 0) {
      stdout.push(outBuf.slice(0, i));
      outBuf = outBuf.slice(i + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout,
    stderr,
    records: () => stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AccessLogRecord),
    waitForStderr: async (substr, timeoutMs = 20_000) => {
      await waitFor(() => stderr.join('').includes(substr) || child.exitCode !== null, timeoutMs, `stderr "${substr}"`);
      if (!stderr.join('').includes(substr)) throw new Error(`tollgate exited (${child.exitCode}) before "${substr}": ${stderr.join('')}`);
    },
    exit: () => exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
    },
    stop: async (graceMs = 3000) => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
