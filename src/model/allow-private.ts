/**
 * `tollgate.io/allow-private-addresses` on a ServiceEntry: the private ranges the DNS answers for
 * its hosts may fall in. An on-premises host called by name (`erp.corp.example` -> 10.20.1.7) is
 * refused by the SSRF guard like any private address a name could point at; this annotation is
 * how the owner of the entry says "these addresses are really where this host lives".
 *
 * Deliberately narrow:
 * - a list of CIDRs or addresses (`"10.20.0.0/16, 192.168.7.10"`), no `"true"`: the operator
 *   names where the host lives, so a DNS answer moved elsewhere (a rebinding attack, a hijacked
 *   zone) is still refused;
 * - every entry must lie inside private space (RFC 1918, IPv6 ULA fc00::/7 and site-local
 *   fec0::/10) or CGNAT (100.64.0.0/10); loopback, link-local, metadata and other classes stay
 *   denied whatever the annotation says (`--allow-cidr` on the proxy is the operator's override);
 * - at run time the address itself must still be of class private or cgnat (100.100.100.200
 *   lies in CGNAT but is a metadata address and stays denied), and only addresses that came from
 *   resolving this entry's hosts are affected — other destinations never.
 * An entry that breaks these rules is left out (fail closed) and reported by `analyze`
 * (TG_ALLOW_PRIVATE_INVALID, an error: the config asks for something the proxy will not do).
 */
import { cidrBase, classifyIp, ENTRY_ALLOWABLE_CLASSES, ipv6FromWords, parseCidr, type Cidr, type Ip } from '../net/ip.js';

export const ALLOW_PRIVATE_ANNOTATION = 'tollgate.io/allow-private-addresses';

export interface AllowPrivateParse {
  /** Valid entries as written (normalised spacing), for the snapshot. */
  readonly cidrs: readonly string[];
  /** Why each refused entry was refused. */
  readonly errors: readonly string[];
}

/** The last address of a CIDR (host bits set). */
function lastAddress(c: Cidr): Ip {
  if (c.family === 4) return { family: 4, value: (c.base | ~c.mask) >>> 0 };
  return ipv6FromWords(c.b0 | ~c.m0, c.b1 | ~c.m1, c.b2 | ~c.m2, c.b3 | ~c.m3);
}

/** Parses the annotation value; `undefined` (no annotation) gives an empty result. */
export function parseAllowPrivate(value: string | undefined): AllowPrivateParse {
  if (value === undefined) return { cidrs: [], errors: [] };
  const cidrs: string[] = [];
  const errors: string[] = [];
  const entries = value.split(/[\s,]+/).filter((e) => e !== '');
  if (entries.length === 0) errors.push('empty: list the CIDRs the host resolves into, e.g. "10.20.0.0/16"');
  for (const e of entries) {
    const c = parseCidr(e);
    if (c === undefined) {
      errors.push(e === 'true' || e === 'yes' || e === '*' ? `"${e}": name the ranges instead (e.g. "10.20.0.0/16"), so an answer that moved elsewhere is still refused` : `"${e}" is not an IP address or CIDR`);
      continue;
    }
    const a = classifyIp(cidrBase(c));
    const b = classifyIp(lastAddress(c));
    if (!ENTRY_ALLOWABLE_CLASSES.has(a) || a !== b) {
      errors.push(`"${e}" is not inside private (RFC 1918, fc00::/7) or CGNAT (100.64.0.0/10) space${ENTRY_ALLOWABLE_CLASSES.has(a) ? '' : ` (it starts in ${a} space)`}; other classes are opened only by the proxy's --allow-cidr`);
      continue;
    }
    cidrs.push(e);
  }
  return { cidrs, errors };
}
