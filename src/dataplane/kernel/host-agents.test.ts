import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Logger } from '../../shared/logger.js';
import type { Snapshot } from '../../snapshot/types.js';
import { MetricsRegistry } from '../observe/metrics.js';
import { HostAgents } from './host-agents.js';

describe('HostAgents', () => {
  it('refuses kernel state (floating addresses, router kernel mode) when several worker processes would share it', async () => {
    const agents = new HostAgents({
      logger: new Logger('error', { write: () => true }),
      metrics: new MetricsRegistry(),
      routerInterface: 'macvlan0',
      ownPorts: [],
      holder: 'test',
      lease: { durationMs: 2000, renewMs: 400, marginMs: 600 },
      singleProcess: false,
    });
    const snapshot = { managedAddresses: [{ address: '198.51.100.50', managedBy: 'floating', lease: 'x', source: 'ServiceEntry a/b' }] } as unknown as Snapshot;
    await assert.rejects(agents.apply(snapshot), /--workers 1/);
    await agents.apply({} as Snapshot); // nothing to do: fine
  });
});
