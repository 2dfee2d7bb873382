/**
 * Downstream HTTP/1.1 writes through the accepted socket's handle (socket-write.ts): responses,
 * small and large, reach the client without a write through net.Socket#write (the fast path is
 * in use), and a client that stops reading stops the upstream: the proxy holds a bounded amount of
 * the body and the upstream's socket fills up, then everything arrives once the client reads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { acceptedOn, rawClient, startRawUpstream, takeRequestPath, type RawConn, type RawUpstream } from '../helpers/http.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const BIG = 64 * 1024 * 1024;
const KIB = Buffer.alloc(1024, 'k');
const K256 = Buffer.alloc(256 * 1024, 'q');
/** Upstream bytes of /big written so far (counted when its socket accepted them). */
let bigWritten = 0;
let bigConn: RawConn | undefined;

function behave(c: RawConn): void {
  const path = takeRequestPath(c);
  if (path === undefined) return;
  const s = c.socket;
  if (path === '/1k') return void s.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n'), KIB]));
  if (path === '/256k') return void s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${K256.length}\r\n\r\n`), K256]));
  if (path === '/big') {
    bigConn = c;
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
    const chunk = Buffer.alloc(256 * 1024, 0x62);
    let sent = 0;
    const pump = (): void => {
      while (sent < BIG && !s.destroyed) {
        sent += chunk.length;
        const ok = s.write(chunk, () => (bigWritten += chunk.length));
        if (!ok) return void s.once('drain', pump);
      }
    };
    pump();
  }
}

describe('HTTP engine: downstream writes through the socket handle', { concurrency: false }, () => {
  let up: RawUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    up = await startRawUpstream(loopbackAddress(), behave);
    const yaml =
      targetPortEntry('raw', 'edge', 'raw.test', [up.host], up.port) +
      egressGateway(['raw.test'], 'edge', 'gw') +
      virtualService('raw', 'edge', ['raw.test'], ['gw'], `http:\n- route: [{destination: {host: raw.test, port: {number: 80}}}]`);
    cfg = tempConfig(yaml);
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({}) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await up?.close();
    cfg?.cleanup();
  });

  it('responses go out without net.Socket#write (the handle write is in use)', { timeout: 60_000 }, async () => {
    const c = await rawClient('127.0.0.1', port);
    const mine = acceptedOn(port).filter((s) => s.remotePort === c.socket.localPort);
    assert.equal(mine.length, 1);
    const accepted = mine[0]!;
    let viaWritable = 0;
    const orig = accepted.write.bind(accepted);
    accepted.write = ((...args: Parameters<Socket['write']>) => {
      viaWritable++;
      return orig(...args);
    }) as Socket['write'];
    c.send('GET /1k HTTP/1.1\r\nHost: raw.test\r\n\r\nGET /256k HTTP/1.1\r\nHost: raw.test\r\n\r\nGET /1k HTTP/1.1\r\nHost: raw.test\r\n\r\n');
    const rs = await c.responses(3, 5000);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.equal(rs[0]!.body, KIB.toString('latin1'));
    assert.equal(rs[1]!.body, K256.toString('latin1'));
    assert.equal(rs[2]!.body.length, 1024);
    assert.equal(viaWritable, 0, 'no response byte went through the Writable');
    c.destroy();
  });

  it('a client that does not read stops the upstream; the body arrives complete once it reads', { timeout: 60_000 }, async () => {
    bigWritten = 0;
    bigConn = undefined;
    const client = connect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    client.pause();
    client.write('GET /big HTTP/1.1\r\nHost: raw.test\r\n\r\n');
    await waitFor(() => bigConn !== undefined && bigWritten > 0, 5000, 'the upstream starts sending');
    // Wait until the upstream has stopped making progress: its socket is full.
    let last = -1;
    for (let i = 0; i < 100 && bigWritten !== last; i++) {
      last = bigWritten;
      await sleep(100);
    }
    assert.equal(bigWritten, last, 'the upstream stalls while the client does not read');
    assert.ok(bigWritten < BIG / 2, `the upstream wrote ${bigWritten} of ${BIG} bytes to a client that reads nothing`);
    assert.ok(bigConn!.socket.writableLength > 0, 'the upstream socket holds unsent bytes: the proxy stopped reading it');
    const accepted = acceptedOn(port).filter((s) => s.remotePort === client.localPort)[0]!;
    const queued = (accepted as Socket & { _handle: { writeQueueSize: number } })._handle.writeQueueSize + accepted.writableLength;
    assert.ok(queued <= 512 * 1024, `the proxy holds ${queued} bytes for the client (one upstream read at most)`);
    let got = 0;
    client.on('data', (d: Buffer) => (got += d.length));
    client.resume();
    await waitFor(() => got >= BIG, 30_000, 'the whole body');
    client.destroy();
  });
});
