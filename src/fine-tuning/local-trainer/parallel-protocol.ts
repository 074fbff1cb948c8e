/**
 * The shared control block between ParallelKernels and its helper threads (kernel-worker.ts):
 * Int32 cells for the command and its operands, a float64 cell for the scale, and the
 * row split that every participant computes the same way.
 */
export const CONTROL = {
  SEQUENCE: 0, OP: 1, ARRAY_A: 2, ARRAY_B: 3, ARRAY_C: 4, IN_DIM: 5, OUT_DIM: 6, ACCUMULATE: 7, DONE: 8, ROWS: 9, PARTICIPANTS: 10, FAILED: 11,
  INTS: 16,
  SCALE_BYTE_OFFSET: 64,
  BYTES: 72,
} as const;

export const OP = { MATMUL: 1, MATMUL_TRANSPOSED: 2, SHUTDOWN: 3 } as const;

/** A shared array made known to a helper thread. */
export interface SharedArrayMessage {
  id: number;
  kind: 'f32' | 'f64';
  buffer: SharedArrayBuffer;
  byteOffset: number;
  length: number;
}

/** Rows [start, end) of participant `index` (0 = the calling thread) of `participants`. */
export function rowRange(rows: number, participants: number, index: number): [number, number] {
  return [Math.floor((rows * index) / participants), Math.floor((rows * (index + 1)) / participants)];
}
