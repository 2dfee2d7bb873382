/**
 * Source address checks: every pool's complete address set (what a partner's allowlist must hold,
 * whichever replica or node sends), and placements that leave an address with no replica, or a
 * floating address with no standby.
 */
import { SOURCE_ADDRESS_POOL_ANNOTATION } from '../model/source-pools.js';
import { SOURCE_ADDRESS_ANNOTATION } from '../model/registry.js';
import { parseIp, type Ip } from '../net/ip.js';
import type { Check } from './context.js';

function byAddress(a: string, b: string): number {
  const key = (s: string): string => {
    const ip: Ip | undefined = parseIp(s);
    if (!ip) return s;
    const words = ip.family === 4 ? [0, 0, 0xffff, ip.value] : [ip.w0, ip.w1, ip.w2, ip.w3];
    return words.map((w) => w.toString(16).padStart(8, '0')).join('');
  };
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

export const sourceAddressPools: Check = (f) => {
  const everything = new Set<string>();
  for (const pool of f.model.sourcePools) {
    const r = pool.resource;
    const path = r.kind === 'ServiceEntry' ? ['metadata', 'annotations', SOURCE_ADDRESS_POOL_ANNOTATION] : r.kind === 'EgressIP' ? ['spec', 'egressIPs'] : ['egressIPs'];
    if (pool.addresses.length === 0) continue; // the pool's own error was reported by the model
    for (const a of pool.addresses) everything.add(a);
    const placed = Object.keys(pool.placement).length > 0;
    const where = placed ? `; placement (HostSubnet): ${pool.addresses.map((a) => `${a} on ${pool.placement[a]?.join(' or ') ?? 'no node'}`).join(', ')}` : '; every replica may use every address';
    const who = r.kind === 'ServiceEntry' ? `connections to ${(r.spec as { hosts?: string[] }).hosts?.join(', ') ?? r.name}` : `callers in namespace(s) selected by ${pool.label}`;
    f.report('info', 'TG_SOURCE_ADDRESS_SET', r, path, `${pool.label} (${pool.mode}): ${who} leave from ${pool.addresses.join(', ')}; a partner must allow all of them${where}`, pool.mode === 'floating' ? 'one replica holds each address at a time (lease); it moves to a standby when the holder dies' : 'each replica binds the first address of its share that is assigned on its host');
    if (placed) {
      const unplaced = pool.addresses.filter((a) => !pool.placement[a]);
      if (unplaced.length > 0) {
        f.report('warning', 'TG_SOURCE_ADDRESS_UNPLACED', r, path, `${unplaced.join(', ')} of ${pool.label} is listed by no HostSubnet, so no replica may use it`, `oc patch hostsubnet <node> -p '{"egressIPs": [...]}' to place it, or remove it from the pool`);
      }
      if (pool.mode === 'floating') {
        const single = pool.addresses.filter((a) => pool.placement[a]?.length === 1);
        if (single.length > 0) {
          f.report('warning', 'TG_SOURCE_ADDRESS_NO_STANDBY', r, path, `${single.join(', ')} of ${pool.label} is listed by one HostSubnet only: when that node's replica dies nobody takes the address over`, 'list the address in a second node\'s HostSubnet.egressIPs');
        }
      }
    }
  }
  for (const s of f.model.registry.services) if (s.sourceAddress) everything.add(s.sourceAddress);
  for (const router of f.model.egressRouters) if (router.source) everything.add(router.source);
  for (const s of f.model.registry.services) {
    if (s.sourceAddress && s.resource.annotations[SOURCE_ADDRESS_POOL_ANNOTATION] !== undefined) {
      f.report('warning', 'TG_SOURCE_POOL_SHADOWED', s.resource, ['metadata', 'annotations', SOURCE_ADDRESS_ANNOTATION], `both ${SOURCE_ADDRESS_ANNOTATION} and ${SOURCE_ADDRESS_POOL_ANNOTATION} are set; the single address wins and the pool is not used`, 'keep one of the two annotations');
    }
  }
  const first = f.model.sourcePools[0]?.resource;
  if (first && everything.size > 0) {
    f.report('info', 'TG_SOURCE_ADDRESSES_ALL', first, ['metadata', 'name'], `every fixed source address this config can send from: ${[...everything].sort(byAddress).join(', ')}`, 'give this list to partners that allowlist by source IP');
  }
};
