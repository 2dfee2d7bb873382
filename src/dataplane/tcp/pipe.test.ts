/**
 * The tunnel with real loopback sockets: bytes arrive intact and in order whatever the read sizes
 * (the shared buffer, a flow's own reused buffer, and the switch between them) and however slowly
 * the far side reads (a reused buffer must not be overwritten while a write of it is queued);
 * bytes read before the tunnel go first; half-close, reset, and closing the listener's socket.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test as nodeTest } from 'node:test';
import { Tunnel, type PipeResult } from './pipe.js';

interface Rig {
  /** The test's client socket (downstream peer). */
  client: Socket;
  /** The test's server-side socket (upstream peer). */
  server: Socket;
  /** The proxy's accepted socket, as the listener holds it. */
  accepted: Socket;
  tunnel: Tunnel;
  ended: Promise<PipeResult>;
  close(): Promise<void>;
}

async function listening(s: Server): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
}

/** client -> proxy (accepted, paused) -> Tunnel -> upstream socket -> server. */
async function rig(opts: { clientFirst?: Buffer; beforeTunnel?: (accepted: Socket) => void | Promise<void | Buffer>; idleTimeoutMs?: number } = {}): Promise<Rig> {
  const upServer = createServer({ allowHalfOpen: true });
  const upPort = await listening(upServer);
  const proxy = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const proxyPort = await listening(proxy);
  const acceptedP = once(proxy, 'connection') as Promise<[Socket]>;
  const serverP = once(upServer, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
  if (opts.clientFirst) client.write(opts.clientFirst);
  const [accepted] = await acceptedP;
  // What beforeTunnel returns was read from the client: the tunnel's initial bytes.
  const initial = (await opts.beforeTunnel?.(accepted)) ?? undefined;
  const up = connect({ host: '127.0.0.1', port: upPort, allowHalfOpen: true });
  await once(up, 'connect');
  const [server] = await serverP;
  let resolveEnd!: (r: PipeResult) => void;
  const ended = new Promise<PipeResult>((r) => (resolveEnd = r));
  const tunnel = new Tunnel(accepted, up, { idleTimeoutMs: opts.idleTimeoutMs ?? 0, onEnd: resolveEnd, initial });
  return {
    client,
    server,
    accepted,
    tunnel,
    ended,
    async close() {
      client.destroy();
      server.destroy();
      await Promise.all([new Promise((r) => proxy.close(r)), new Promise((r) => upServer.close(r))]);
    },
  };
}

/** Writes `chunks` in order (waiting for drain), then ends. */
async function sendAll(s: Socket, chunks: readonly Buffer[]): Promise<void> {
  for (const c of chunks) if (!s.write(c)) await once(s, 'drain');
  s.end();
}

/** Reads until end; with `slowMs`, pauses that long after each chunk so the sender's queue fills. */
async function readAll(s: Socket, slowMs = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => {
    parts.push(c);
    if (slowMs > 0 && parts.length % 8 === 0) {
      s.pause();
      setTimeout(() => s.resume(), slowMs);
    }
  });
  await once(s, 'end');
  return Buffer.concat(parts);
}

/** Every case is bounded: a stuck tunnel fails the test instead of hanging the run. */
const test = (name: string, fn: () => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Small writes, then bulk, then small again: the flows move from the shared buffer to their own and back. */
function mixedChunks(seed: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 40; i++) out.push(randomBytes(1 + ((i * 37 + seed) % 300)));
  for (let i = 0; i < 320; i++) out.push(randomBytes(64 * 1024));
  for (let i = 0; i < 40; i++) out.push(randomBytes(1 + ((i * 53 + seed) % 900)));
  return out;
}

test('bulk both ways with a slow reader on each side: every byte arrives, in order', async () => {
  const r = await rig();
  try {
    const toUp = mixedChunks(1);
    const toDown = mixedChunks(2);
    const [gotUp, gotDown] = await Promise.all([readAll(r.server, 10), readAll(r.client, 10), sendAll(r.client, toUp), sendAll(r.server, toDown)]);
    assert.equal(gotUp.length, Buffer.concat(toUp).length);
    assert.equal(digest(gotUp), digest(Buffer.concat(toUp)));
    assert.equal(digest(gotDown), digest(Buffer.concat(toDown)));
    const res = await r.ended;
    assert.equal(res.outcome, 'closed');
    assert.equal(res.bytesFromDownstream, gotUp.length);
    assert.equal(res.bytesFromUpstream, gotDown.length);
  } finally {
    await r.close();
  }
});

/**
 * The client's first bytes are read before the tunnel exists (as the TLS inspector reads a
 * ClientHello); `handOver` gives them back, as initial bytes or with an unshift. They must reach
 * the upstream first, ahead of everything sent later, and count as read from the downstream.
 */
async function firstBytesGoFirst(handOver: (accepted: Socket, chunk: Buffer) => Buffer | undefined): Promise<void> {
  const hello = Buffer.from('pretend-client-hello|');
  const r = await rig({
    clientFirst: hello,
    async beforeTunnel(accepted) {
      accepted.resume();
      const [chunk] = (await once(accepted, 'data')) as [Buffer];
      accepted.pause();
      return handOver(accepted, chunk);
    },
  });
  try {
    const rest = [randomBytes(100_000), Buffer.from('tail')];
    const [got] = await Promise.all([readAll(r.server), sendAll(r.client, rest)]);
    assert.equal(digest(got), digest(Buffer.concat([hello, ...rest])));
    r.server.end();
    assert.equal((await r.ended).bytesFromDownstream, got.length);
  } finally {
    await r.close();
  }
}

test('bytes the proxy read before the tunnel (a ClientHello) and handed to it as initial bytes go upstream first', async () => {
  await firstBytesGoFirst((_accepted, chunk) => chunk);
});

test('bytes the proxy read and pushed back before the tunnel (a ClientHello) go upstream first', async () => {
  await firstBytesGoFirst((accepted, chunk) => {
    accepted.unshift(chunk);
    return undefined;
  });
});

test('half-close: the client ends its side and still gets the answer; then both ends close', async () => {
  const r = await rig();
  try {
    const gotReply = readAll(r.client);
    r.client.end('question');
    const q = await readAll(r.server);
    assert.equal(q.toString(), 'question');
    r.server.end('answer after the client FIN');
    assert.equal((await gotReply).toString(), 'answer after the client FIN');
    assert.equal((await r.ended).outcome, 'closed');
  } finally {
    await r.close();
  }
});

test('an upstream reset reaches the client as a reset, not a clean end', async () => {
  const r = await rig();
  try {
    r.client.write('x');
    await once(r.server, 'data');
    const clientErr = once(r.client, 'error') as Promise<[NodeJS.ErrnoException]>;
    r.server.resetAndDestroy();
    const [err] = await clientErr;
    assert.equal(err.code, 'ECONNRESET');
    assert.equal((await r.ended).outcome, 'upstream_reset');
  } finally {
    await r.close();
  }
});

test("destroying the listener's socket (route removed, shutdown) ends the tunnel, and the tunnel's end closes the listener's socket", async () => {
  const r = await rig();
  try {
    r.client.write('x');
    await once(r.server, 'data');
    const serverEnded = once(r.server, 'end');
    r.accepted.destroy();
    await r.ended;
    await serverEnded;
  } finally {
    await r.close();
  }
  const r2 = await rig();
  try {
    const acceptedClosed = once(r2.accepted, 'close');
    r2.client.end();
    r2.server.end();
    await r2.ended;
    await acceptedClosed;
  } finally {
    await r2.close();
  }
});

test('idle timeout: no bytes either way for the timeout closes both sides', async () => {
  const t0 = Date.now();
  const r = await rig({ idleTimeoutMs: 150 });
  try {
    const res = await r.ended;
    assert.equal(res.outcome, 'idle_timeout');
    // Never early (the sweeper stamps activity with the tick that sees it).
    assert.ok(Date.now() - t0 >= 150, `closed after ${Date.now() - t0} ms`);
  } finally {
    await r.close();
  }
});

test('idle timeout: bytes in either direction keep the tunnel open past the timeout', async () => {
  // A generous timeout against the 100 ms gaps: timers slip on a loaded machine.
  const r = await rig({ idleTimeoutMs: 1000 });
  let ended = false;
  void r.ended.then(() => (ended = true));
  try {
    // 1.5 s of traffic, a byte every 100 ms, alternating directions.
    for (let i = 0; i < 15; i++) {
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(ended, false, `tunnel ended after ${(i + 1) * 100} ms of activity`);
      (i % 2 === 0 ? r.client : r.server).write('x');
    }
    const res = await r.ended;
    assert.equal(res.outcome, 'idle_timeout');
    assert.equal(res.bytesFromDownstream + res.bytesFromUpstream, 15);
  } finally {
    await r.close();
  }
});
