/**
 * A number for a JSON Schema `number` or `integer`: 1 when the bounds allow it, else the
 * value nearest to the violated bound, on the grid of `multipleOf` when there is one
 * (checked the way validators check it: `value / multipleOf` must be an integer), else on
 * a grid of 1 (integers) or 0.5 (numbers). The `variant`-th valid value, counting outwards
 * from there, is returned, so that several distinct numbers can be had.
 */
import { numberKeyword, type SchemaObject } from './json-schema-ref.js';

interface Bounds {
  lower?: number;
  lowerExclusive: boolean;
  upper?: number;
  upperExclusive: boolean;
}

function boundsOf(schema: SchemaObject): Bounds {
  const bounds: Bounds = { lowerExclusive: false, upperExclusive: false };
  const tighten = (value: number | undefined, exclusive: boolean, side: 'lower' | 'upper') => {
    if (value === undefined) return;
    const current = bounds[side];
    const stricter = current === undefined || (side === 'lower' ? value > current : value < current);
    const same = current === value;
    if (stricter) {
      bounds[side] = value;
      bounds[side === 'lower' ? 'lowerExclusive' : 'upperExclusive'] = exclusive;
    } else if (same && exclusive) bounds[side === 'lower' ? 'lowerExclusive' : 'upperExclusive'] = true;
  };
  tighten(numberKeyword(schema, 'minimum'), schema.exclusiveMinimum === true, 'lower');
  tighten(numberKeyword(schema, 'exclusiveMinimum'), true, 'lower');
  tighten(numberKeyword(schema, 'maximum'), schema.exclusiveMaximum === true, 'upper');
  tighten(numberKeyword(schema, 'exclusiveMaximum'), true, 'upper');
  return bounds;
}

function withinBounds(value: number, bounds: Bounds): boolean {
  if (bounds.lower !== undefined && (bounds.lowerExclusive ? value <= bounds.lower : value < bounds.lower)) return false;
  if (bounds.upper !== undefined && (bounds.upperExclusive ? value >= bounds.upper : value > bounds.upper)) return false;
  return true;
}

const searchLimit = 5000;

export function numberSample(schema: SchemaObject, integer: boolean, variant = 0): number | undefined {
  const bounds = boundsOf(schema);
  const multipleOf = numberKeyword(schema, 'multipleOf');
  // Numbers (not integers) also try halves, so that a variant can be a non-integer.
  const step = multipleOf !== undefined && multipleOf > 0 ? multipleOf : integer ? 1 : 0.5;
  const acceptable = (value: number) =>
    Number.isFinite(value) &&
    withinBounds(value, bounds) &&
    (!integer || Number.isInteger(value)) &&
    (multipleOf === undefined || multipleOf <= 0 || Number.isInteger(value / multipleOf));

  let anchor = 1;
  if (!withinBounds(anchor, bounds)) {
    if (bounds.lower !== undefined && anchor <= bounds.lower) anchor = bounds.lower;
    else if (bounds.upper !== undefined) anchor = bounds.upper;
  }
  const found: number[] = [];
  const seen = new Set<number>();
  const consider = (candidate: number) => {
    const value = candidate === 0 ? 0 : candidate; // no -0
    if (seen.has(value) || !acceptable(value)) return;
    seen.add(value);
    found.push(value);
  };
  const base = Math.round(anchor / step);
  for (let offset = 0; offset < searchLimit && found.length <= variant; offset++) {
    for (const index of offset === 0 ? [base] : [base + offset, base - offset]) {
      const candidate = index * step;
      consider(candidate);
      // 3 * 0.1 is 0.30000000000000004: also try the rounded value.
      if (!Number.isInteger(step)) consider(Number(candidate.toPrecision(12)));
    }
  }
  if (found.length > variant) return found[variant];
  if (!integer && multipleOf === undefined && bounds.lower !== undefined && bounds.upper !== undefined) {
    const middle = (bounds.lower + bounds.upper) / 2;
    if (acceptable(middle)) return middle;
  }
  return found[0];
}
