/**
 * Config files -> this proxy's snapshot, built in a short-lived child process (snapshot-worker.ts).
 * The YAML parsers, the decoders, the model and the snapshot generators run and allocate in the
 * child, whose memory goes back to the system when it exits: the serving process never loads their
 * code and keeps none of their garbage, only the plain snapshot it compiles. (A worker thread was
 * measured first: its heap is freed, but the memory it touched mostly stays in the process.)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fork } from 'node:child_process';
import type { SnapshotOptions } from '../snapshot/build.js';
import { shareValues } from '../snapshot/share-values.js';
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';

/** Identity flags as given; missing labels/namespace are inferred from the config (cli/common.ts identityFrom). */
export interface IdentityFlags {
  readonly role?: string;
  readonly namespace?: string;
  readonly labels?: string;
  readonly name?: string;
  /** `--node`, else NODE_NAME from the environment (downward API spec.nodeName). */
  readonly nodeName?: string;
}

export interface SnapshotRequest {
  readonly paths: readonly string[];
  readonly identity: IdentityFlags;
  readonly options: SnapshotOptions;
}

export interface SnapshotReply {
  /** Undefined when the config has errors (each in `errors`, with file:line and fix). */
  readonly snapshot: Snapshot | undefined;
  readonly proxy: ProxyIdentity | undefined;
  readonly errors: readonly string[];
  /** Warnings and info diagnostics, formatted. */
  readonly notices: readonly string[];
  /** What the loader inferred (identity from the only Gateway selector, ...). */
  readonly notes: readonly string[];
  /** Objects in the config: an edit that empties it can be refused (the file source's rule). */
  readonly resources: number;
}

/** What the worker posts: a reply, or a usage problem (bad --role, ambiguous identity) as text. */
export type WorkerMessage = { readonly ok: true; readonly reply: SnapshotReply } | { readonly ok: false; readonly error: string };

const WORKER = fileURLToPath(new URL('./snapshot-worker.js', import.meta.url));

/** Flags of this process the child must not repeat (a second profile or debugger port). */
const NOT_INHERITED = /^--(cpu-prof|heap-prof|prof|inspect)/;

/** Runs the config pipeline in a child process; rejects with its message on a usage error or a crash. */
export function loadSnapshotIsolated(request: SnapshotRequest): Promise<SnapshotReply> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [], {
      execArgv: process.execArgv.filter((a) => !NOT_INHERITED.test(a)),
      // stdin only when a path is '-'; stdout is never the child's (it is the access log here).
      stdio: [request.paths.includes('-') ? 'inherit' : 'ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    let reply: WorkerMessage | undefined;
    child.once('message', (m) => {
      reply = m as WorkerMessage;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (reply === undefined) reject(new Error(`the config loader exited (${signal ?? `code ${code}`}) before answering`));
      else if (reply.ok) resolve(reply.reply.snapshot ? { ...reply.reply, snapshot: shareValues(reply.reply.snapshot) } : reply.reply);
      else reject(new Error(reply.error));
    });
    child.send(request);
  });
}

/** examples/default next to the package root (works from src/ via tsx and from dist/src/). */
export function defaultConfigDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'examples', 'default');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}
