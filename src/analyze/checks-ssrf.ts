/**
 * `tollgate.io/allow-private-addresses` on ServiceEntries: an entry that does not parse, or asks for
 * more than private/CGNAT space, is an error (the proxy leaves it out: those answers stay denied);
 * a valid one is shown, because it opens the SSRF guard for the entry's hosts.
 */
import { ALLOW_PRIVATE_ANNOTATION, parseAllowPrivate } from '../model/allow-private.js';
import type { Resource } from '../config/decode.js';
import type { Check } from './context.js';

export const allowPrivateAnnotations: Check = (f) => {
  const seen = new Set<Resource>();
  for (const s of f.model.registry.services) {
    const r = s.resource;
    const value = r.annotations[ALLOW_PRIVATE_ANNOTATION];
    if (value === undefined || seen.has(r)) continue;
    seen.add(r);
    const path = ['metadata', 'annotations', ALLOW_PRIVATE_ANNOTATION];
    const p = parseAllowPrivate(value);
    for (const e of p.errors) f.report('error', 'TG_ALLOW_PRIVATE_INVALID', r, path, `${ALLOW_PRIVATE_ANNOTATION}: ${e}; the proxy ignores it and keeps denying those addresses`, '');
    if (p.cidrs.length === 0) continue;
    const hosts = (r.spec as { hosts?: string[] }).hosts?.join(', ') ?? r.name;
    const dns = s.resolution === 'DNS' || s.resolution === 'DNS_ROUND_ROBIN' || s.resolution === 'NONE';
    f.report(
      'info',
      'TG_PRIVATE_ADDRESSES_ALLOWED',
      r,
      path,
      `DNS answers for ${hosts} inside ${p.cidrs.join(', ')} pass the SSRF guard (private and CGNAT addresses only; loopback, link-local and metadata stay denied)${dns ? '' : `; resolution ${s.resolution} has no DNS answers, so the annotation changes nothing`}`,
      'keep the ranges as narrow as where the host really lives',
    );
  }
};
