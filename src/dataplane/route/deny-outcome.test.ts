import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FilterChain } from '../../snapshot/types.js';
import { denyOutcome } from './select.js';

const deny = (reason: string): FilterChain => ({ name: 'deny', match: {}, filter: { type: 'deny', reason, detail: 'd' } }) as FilterChain;

test('an L4 registry denial is BLOCKED, like the HTTP one; other refusals are NR', () => {
  assert.deepEqual(denyOutcome(deny('registry_only'), { tls: false }), { flag: 'BLOCKED', reason: 'registry_only' });
  assert.deepEqual(denyOutcome(deny('sni_not_routed'), { tls: true, sni: 'x.test' }), { flag: 'NR', reason: 'sni_not_routed' });
  assert.deepEqual(denyOutcome(deny('sni_not_routed'), { tls: true }), { flag: 'NR', reason: 'sni_missing' });
  assert.deepEqual(denyOutcome(undefined, { tls: false }), { flag: 'NR', reason: 'no_filter_chain' });
  assert.deepEqual(denyOutcome(undefined, { tls: false }, 'tls_not_tls'), { flag: 'NR', reason: 'tls_not_tls' });
});
