/**
 * `tollgate run --workers N`: N processes serve the same listeners. node:cluster shares each
 * listening socket and every worker accepts on it itself (SCHED_NONE): the kernel hands each new
 * connection to one of the workers waiting in accept. Node's default on Linux, round-robin, has
 * the primary accept every connection and pass it to a worker over IPC, a hop that cost more CPU
 * per new connection than a worker's whole handling of it in the bench (docs/operations.md);
 * NODE_CLUSTER_SCHED_POLICY=rr still selects it. The primary runs no data
 * plane: it forks the workers, restarts one that dies, forwards SIGTERM, and serves the admin API
 * by asking every worker's private admin and merging the answers:
 * /ready is 200 only when every worker is ready; /stats/prometheus sums each series across
 * workers (event-loop lag takes the maximum); other views come from worker 1, with the
 * per-worker list under /workers.
 *
 * A worker's private admin listens on a unix socket in a directory only this user can enter, not
 * on a TCP port: a route, a passthrough or a CONNECT through a listener can never reach it, whatever
 * `--allow-cidr` allows. The primary's own admin port is passed to the workers, whose self-connect
 * guard refuses it like their own ports.
 */
import cluster, { type Worker } from 'node:cluster';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WORKER_ENV = 'TOLLGATE_WORKER';

export interface WorkerMessage {
  readonly type: 'admin';
  readonly socketPath: string;
}

export function isWorkerProcess(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

/** In a worker: tell the primary where this worker's private admin listens. */
export function reportAdmin(socketPath: string): void {
  process.send?.({ type: 'admin', socketPath } satisfies WorkerMessage);
}

/** In a worker: a fresh private directory for the admin socket, removed when the worker exits. */
export function privateAdminSocket(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-worker-'));
  chmodSync(dir, 0o700);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'admin.sock');
}

function fetchText(socketPath: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

/** Event-loop lag is per process: the worst worker is the useful figure, not the sum. */
function isMaxGauge(series: string): boolean {
  const brace = series.indexOf('{');
  return (brace < 0 ? series : series.slice(0, brace)).includes('event_loop_lag');
}

/** Sums Prometheus text series across workers; HELP/TYPE lines once; event-loop lag takes the max. */
export function mergePrometheus(texts: readonly string[]): string {
  const meta: string[] = [];
  const seenMeta = new Set<string>();
  const values = new Map<string, number>();
  const order: string[] = [];
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        if (!seenMeta.has(line)) {
          seenMeta.add(line);
          meta.push(line);
          order.push(line);
        }
        continue;
      }
      const sp = line.lastIndexOf(' ');
      const series = line.slice(0, sp);
      const v = Number(line.slice(sp + 1));
      const prev = values.get(series);
      if (prev === undefined) order.push(series);
      values.set(series, prev === undefined ? v : isMaxGauge(series) ? Math.max(prev, v) : prev + v);
    }
  }
  return order.map((k) => (values.has(k) ? `${k} ${values.get(k)}` : k)).join('\n') + '\n';
}

export interface PrimaryOptions {
  readonly workers: number;
  readonly argv: readonly string[];
  readonly admin?: { readonly host: string; readonly port: number };
  readonly log: (line: string) => void;
}

/** Runs the primary until SIGTERM/SIGINT; resolves with the exit code. */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const adminSockets = new Map<number, string>(); // worker index -> private admin socket
  const byWorker = new Map<Worker, number>();
  let stopping = false;
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ args: ['run', ...opts.argv] });
  const fork = (index: number): void => {
    const w = cluster.fork({ [WORKER_ENV]: String(index) });
    byWorker.set(w, index);
    w.on('message', (m: WorkerMessage) => {
      if (m?.type === 'admin' && typeof m.socketPath === 'string') adminSockets.set(index, m.socketPath);
    });
  };
  cluster.on('exit', (w, code, signal) => {
    const index = byWorker.get(w);
    byWorker.delete(w);
    if (index === undefined) return;
    adminSockets.delete(index);
    if (stopping) return;
    opts.log(`worker ${index} exited (${signal ?? code}); starting a new one`);
    setTimeout(() => fork(index), 500).unref();
  });
  for (let i = 1; i <= opts.workers; i++) fork(i);

  const sockets = (): string[] => [...adminSockets.entries()].sort(([a], [b]) => a - b).map(([, p]) => p);
  const server = opts.admin
    ? createServer((req, res) => {
        void answerAdmin(req.url ?? '/', req.method ?? 'GET', sockets(), opts.workers, res);
      })
    : undefined;
  if (server && opts.admin) {
    const admin = opts.admin;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(admin.port, admin.host, () => resolve());
    });
  }
  opts.log(`primary ${process.pid}: ${opts.workers} workers${opts.admin ? `, admin on ${opts.admin.host}:${opts.admin.port}` : ''}`);

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      opts.log(`${signal}: stopping ${byWorker.size} workers`);
      for (const w of byWorker.keys()) w.process.kill('SIGTERM');
      const check = setInterval(() => {
        if (byWorker.size > 0) return;
        clearInterval(check);
        server?.close();
        server?.closeAllConnections();
        resolve(0);
      }, 50);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // logrotate signals the primary; each worker holds its own descriptor of the access-log file.
    process.on('SIGUSR1', () => {
      for (const w of byWorker.keys()) w.process.kill('SIGUSR1');
    });
  });
}

async function answerAdmin(url: string, method: string, ports: string[], expected: number, res: ServerResponse): Promise<void> {
  const path = new URL(url, 'http://admin').pathname;
  const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  };
  if (path === '/ready') {
    if (ports.length < expected) return reply(503, `PRE_INITIALIZING (${ports.length}/${expected} workers)\n`);
    const all = await Promise.all(ports.map((p) => fetchText(p, '/ready')));
    const ready = all.every((r) => r.status === 200);
    return reply(ready ? 200 : 503, ready ? 'LIVE\n' : `NOT READY (${all.filter((r) => r.status === 200).length}/${expected} workers)\n`);
  }
  if (path === '/stats/prometheus') {
    const all = await Promise.all(ports.map((p) => fetchText(p, '/stats/prometheus')));
    return reply(200, mergePrometheus(all.filter((r) => r.status === 200).map((r) => r.body)), 'text/plain; version=0.0.4; charset=utf-8');
  }
  if (path === '/workers') {
    return reply(200, JSON.stringify(ports.map((p, i) => ({ worker: i + 1, admin: p })), null, 2) + '\n', 'application/json');
  }
  if (path === '/logging') {
    const all = await Promise.all(ports.map((p) => fetchText(p, url, method)));
    return reply(all[0]?.status ?? 503, all[0]?.body ?? 'no worker\n');
  }
  const first = ports[0];
  if (first === undefined) return reply(503, 'no worker is up yet\n');
  const r = await fetchText(first, url, method);
  reply(r.status || 502, r.body, r.body.startsWith('{') || r.body.startsWith('[') ? 'application/json' : 'text/plain; charset=utf-8');
}
