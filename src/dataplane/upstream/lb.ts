/**
 * Endpoint choice. Pure over its inputs (the random source and the cursor/active-count state are
 * passed in), so one conformance test can drive every policy.
 */

export interface LbCandidate {
  readonly key: string; // "ip:port"
  readonly weight: number;
}

export interface LbState {
  /** Round-robin cursor per cluster. */
  cursor(cluster: string): number;
  advance(cluster: string): void;
  /** Active connections/requests on an endpoint of a cluster. */
  active(cluster: string, key: string): number;
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH';

function weightedRandom<T extends LbCandidate>(c: readonly T[], random: () => number): T {
  let total = 0;
  for (const e of c) total += e.weight > 0 ? e.weight : 0;
  if (total <= 0) return c[Math.floor(random() * c.length)] ?? c[0]!;
  let x = random() * total;
  for (const e of c) {
    if (e.weight <= 0) continue;
    if (x < e.weight) return e;
    x -= e.weight;
  }
  return c[c.length - 1]!;
}

function uniformWeights(c: readonly LbCandidate[]): boolean {
  const w = c[0]!.weight;
  for (let i = 1; i < c.length; i++) if (c[i]!.weight !== w) return false;
  return true;
}

export function pickEndpoint<T extends LbCandidate>(policy: LbPolicy, cluster: string, c: readonly T[], state: LbState, random: () => number = Math.random): T | undefined {
  if (c.length === 0) return undefined;
  if (c.length === 1) return c[0];
  switch (policy) {
    case 'RANDOM':
      return weightedRandom(c, random);
    case 'LEAST_REQUEST': {
      // Power of two choices (Envoy's default for LEAST_REQUEST).
      const a = c[Math.floor(random() * c.length)]!;
      let b = c[Math.floor(random() * c.length)]!;
      if (b === a) b = c[(c.indexOf(a) + 1) % c.length]!;
      return state.active(cluster, a.key) <= state.active(cluster, b.key) ? a : b;
    }
    default: {
      if (!uniformWeights(c)) return weightedRandom(c, random);
      const i = state.cursor(cluster) % c.length;
      state.advance(cluster);
      return c[i];
    }
  }
}
