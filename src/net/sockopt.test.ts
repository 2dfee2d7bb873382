import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, Socket } from 'node:net';
import { boundSocketNoPort, encodeSockaddr, fdOf, getIntOption, IP_BIND_ADDRESS_NO_PORT, originalDestination, parseSockaddr, raiseNoFileLimit, setIntOption, SOL_IP, sockoptAvailable } from './sockopt.js';


function acceptedPair(): Promise<{ accepted: Socket; client: Socket; close(): void }> {
  return new Promise((resolve) => {
    const server = createServer((accepted) => resolve({ accepted, client, close: () => { accepted.destroy(); client.destroy(); server.close(); } }));
    let client: Socket;
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      client = connect(typeof a === 'object' && a ? a.port : 0, '127.0.0.1');
    });
  });
}

describe('socket options through libc', () => {
  it('loads libc through koffi (a runtime dependency: npm install)', () => {
    assert.ok(sockoptAvailable(), 'koffi is not installed: run npm install');
  });

  it('parses sockaddr_in and sockaddr_in6 (IPv4-mapped reported as IPv4)', () => {
    const v4 = Buffer.from([2, 0, 0x1f, 0x90, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseSockaddr(v4), { ip: '192.0.2.10', port: 8080, family: 4 });
    const v6 = Buffer.alloc(28);
    v6.writeUInt16LE(10, 0);
    v6.writeUInt16BE(443, 2);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(v6, 8);
    assert.deepEqual(parseSockaddr(v6), { ip: '2001:db8::1', port: 443, family: 6 });
    const mapped = Buffer.alloc(28);
    mapped.writeUInt16LE(10, 0);
    mapped.writeUInt16BE(80, 2);
    Buffer.from('00000000000000000000ffffc6336401', 'hex').copy(mapped, 8);
    assert.deepEqual(parseSockaddr(mapped), { ip: '198.51.100.1', port: 80, family: 4 });
  });

  it('a connection that was not redirected has no original destination (ENOENT), never a made-up one', async () => {
    const p = await acceptedPair();
    try {
      const r = originalDestination(p.accepted);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.errno, 2, r.message);
    } finally {
      p.close();
    }
  });

  it('sets and reads back an integer option on the real fd (IP_BIND_ADDRESS_NO_PORT)', async () => {
    const p = await acceptedPair();
    try {
      const fd = fdOf(p.accepted);
      assert.ok(fd !== undefined);
      assert.deepEqual(getIntOption(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT), { ok: true, value: 0 });
      assert.equal(setIntOption(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1).ok, true);
      assert.deepEqual(getIntOption(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT), { ok: true, value: 1 });
      const bad = setIntOption(99999, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
      assert.equal(bad.ok, false);
      if (!bad.ok) assert.equal(bad.errno, 9, 'EBADF');
    } finally {
      p.close();
    }
  });

  it('raises the open-files soft limit to the hard limit', () => {
    const r = raiseNoFileLimit();
    assert.equal(r.ok, true);
    if (r.ok) assert.ok(r.value >= 1024);
  });

  it('encodes sockaddr_in / sockaddr_in6 as parseSockaddr reads them', () => {
    assert.deepEqual(parseSockaddr(encodeSockaddr('192.0.2.10', 8080)!), { ip: '192.0.2.10', port: 8080, family: 4 });
    assert.deepEqual(parseSockaddr(encodeSockaddr('2001:db8::1', 443)!), { ip: '2001:db8::1', port: 443, family: 6 });
    assert.equal(encodeSockaddr('example.test', 1), undefined);
  });

  it('boundSocketNoPort: a socket bound to the source address with IP_BIND_ADDRESS_NO_PORT that Node connects', async () => {
    const server = createServer((s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = boundSocketNoPort('127.0.0.9');
      assert.ok(r.ok, r.ok ? '' : r.message);
      assert.deepEqual(getIntOption(r.value, SOL_IP, IP_BIND_ADDRESS_NO_PORT), { ok: true, value: 1 });
      const s = new Socket({ fd: r.value, readable: true, writable: true });
      const got = await new Promise<string>((resolve, reject) => {
        let text = '';
        s.on('error', reject);
        s.connect({ host: '127.0.0.1', port }, () => assert.equal(s.localAddress, '127.0.0.9'));
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(text));
      });
      s.destroy();
      assert.equal(got, 'hi');
      // An address this host does not have: bind's EADDRNOTAVAIL (99), and no fd leaks.
      const missing = boundSocketNoPort('192.0.2.77');
      assert.equal(missing.ok, false);
      if (!missing.ok) assert.equal(missing.errno, 99, missing.message);
    } finally {
      server.close();
    }
  });
});
