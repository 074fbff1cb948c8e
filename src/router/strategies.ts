/**
 * The order in which a request tries a router model's targets. Every strategy puts the
 * targets whose circuit lets a request through first; the others follow (as a last resort:
 * the attempt loop skips open circuits).
 *
 * - fallback: in configured order.
 * - weighted: the first target drawn at random by weight among the healthy ones, then the
 *   others in configured order.
 * - latency: targets never measured first (to explore them), then by the smallest moving
 *   average of time to the first part.
 */

export type Strategy = 'fallback' | 'weighted' | 'latency';

export interface PlannedTarget {
  weight: number;
  /** Whether its circuit would let a request through now. */
  readonly available: boolean;
  /** Moving average of seconds to the first part; undefined until measured. */
  latencyEwma: number | undefined;
}

export function planTargets<T extends PlannedTarget>(strategy: Strategy, targets: readonly T[], random: () => number = Math.random): T[] {
  const healthy = targets.filter((target) => target.available);
  const unhealthy = targets.filter((target) => !target.available);
  switch (strategy) {
    case 'fallback':
      return [...healthy, ...unhealthy];
    case 'weighted': {
      const first = pickByWeight(healthy, random);
      if (first === undefined) return [...healthy, ...unhealthy];
      return [first, ...healthy.filter((target) => target !== first), ...unhealthy];
    }
    case 'latency': {
      const unexplored = healthy.filter((target) => target.latencyEwma === undefined);
      const measured = healthy
        .filter((target) => target.latencyEwma !== undefined)
        .sort((left, right) => (left.latencyEwma as number) - (right.latencyEwma as number));
      return [...unexplored, ...measured, ...unhealthy];
    }
  }
}

/** One target drawn with probability proportional to its weight (undefined when all weigh 0). */
export function pickByWeight<T extends { weight: number }>(targets: readonly T[], random: () => number = Math.random): T | undefined {
  const total = targets.reduce((sum, target) => sum + target.weight, 0);
  if (total <= 0) return undefined;
  let point = random() * total;
  for (const target of targets) {
    if (target.weight <= 0) continue;
    point -= target.weight;
    if (point < 0) return target;
  }
  return targets.findLast((target) => target.weight > 0);
}

/** Exponentially weighted moving average (alpha 0.3: recent answers count most). */
export function updateEwma(previous: number | undefined, sample: number, alpha = 0.3): number {
  return previous === undefined ? sample : alpha * sample + (1 - alpha) * previous;
}
