/**
 * Allocation of the trainer's float arrays: Float32Array (training) or Float64Array (gradient
 * checks), on a SharedArrayBuffer when the kernels run on several threads (parallel-kernels.ts
 * shares the arrays with its helper threads instead of copying them).
 */
import type { FloatArray, Precision } from './llama-weights.js';

export type FloatAllocator = (length: number) => FloatArray;

export function floatAllocator(precision: Precision, shared: boolean): FloatAllocator {
  const bytes = precision === 'f64' ? 8 : 4;
  if (!shared) return (n) => (precision === 'f64' ? new Float64Array(n) : new Float32Array(n));
  return (n) => {
    const buffer = new SharedArrayBuffer(Math.max(1, n) * bytes);
    return precision === 'f64' ? new Float64Array(buffer, 0, n) : new Float32Array(buffer, 0, n);
  };
}

/** The array itself, or a copy made with `allocate` when it is not shared and `shared` is asked for. */
export function toShared(values: FloatArray, allocate: FloatAllocator): FloatArray {
  if (values.buffer instanceof SharedArrayBuffer) return values;
  const copy = allocate(values.length);
  copy.set(values);
  return copy;
}
