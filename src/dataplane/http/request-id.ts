/**
 * x-request-id values: random (version 4) UUIDs, as `crypto.randomUUID()` makes them, built with
 * one string allocation. randomUUID assembles its result from 20 small strings, which made it the
 * largest single allocation of a proxied request.
 */
import { nodeCrypto } from '../../shared/lazy-builtins.js';

const IDS_PER_REFILL = 256;
const entropy = Buffer.allocUnsafeSlow(16 * IDS_PER_REFILL);
let nextId = IDS_PER_REFILL;
const text = Buffer.allocUnsafeSlow(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

export function requestId(): string {
  if (nextId === IDS_PER_REFILL) {
    nodeCrypto().randomFillSync(entropy);
    nextId = 0;
  }
  const o = 16 * nextId++;
  entropy[o + 6] = (entropy[o + 6]! & 0x0f) | 0x40; // version 4
  entropy[o + 8] = (entropy[o + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // '-'
    const b = entropy[o + i]!;
    text[j++] = HEX[b >> 4]!;
    text[j++] = HEX[b & 15]!;
  }
  return text.toString('latin1', 0, 36);
}
