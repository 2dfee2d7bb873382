import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectErrorFailure } from './failure.js';

const err = (code: string, syscall: string): NodeJS.ErrnoException => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });

describe('connect errors to reasons', () => {
  it('EADDRNOTAVAIL: a missing source address at bind(), exhausted ephemeral ports at connect()', () => {
    assert.equal(connectErrorFailure(err('EADDRNOTAVAIL', 'bind'), 'c', '192.0.2.1:80', '192.0.2.9').reason, 'source_address_unavailable');
    const ports = connectErrorFailure(err('EADDRNOTAVAIL', 'connect'), 'c', '192.0.2.1:80', undefined);
    assert.equal(ports.reason, 'ephemeral_ports_exhausted');
    assert.equal(ports.flag, 'UF');
    assert.equal(connectErrorFailure(err('EADDRNOTAVAIL', 'connect'), 'c', '192.0.2.1:80', '192.0.2.9').reason, 'ephemeral_ports_exhausted');
    assert.equal(connectErrorFailure(err('EADDRINUSE', 'bind'), 'c', '192.0.2.1:80', '192.0.2.9').reason, 'ephemeral_ports_exhausted');
  });
});
