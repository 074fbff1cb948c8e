/**
 * Plain reference kernels: the textbook triple loops, index arithmetic in the innermost loop
 * and no blocking (the input-gradient product walks W by columns). The benchmark compares the
 * optimised kernels against these; both give the same results up to rounding.
 */
import type { MatmulKernels } from './kernel-types.js';
import type { FloatArray } from './llama-weights.js';

export const referenceKernels: MatmulKernels = {
  matmul(X: FloatArray, W: FloatArray, Y: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
    for (let t = 0; t < rows; t++) {
      for (let o = 0; o < outDim; o++) {
        let sum = 0;
        for (let i = 0; i < inDim; i++) sum += X[t * inDim + i]! * W[o * inDim + i]!;
        Y[t * outDim + o] = (accumulate ? Y[t * outDim + o]! : 0) + scale * sum;
      }
    }
  },
  matmulTransposed(dY: FloatArray, W: FloatArray, dX: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
    for (let t = 0; t < rows; t++) {
      for (let i = 0; i < inDim; i++) {
        let sum = 0;
        for (let o = 0; o < outDim; o++) sum += dY[t * outDim + o]! * W[o * inDim + i]!;
        dX[t * inDim + i] = (accumulate ? dX[t * inDim + i]! : 0) + scale * sum;
      }
    }
  },
  outerAccumulate(dY: FloatArray, X: FloatArray, G: FloatArray, rows: number, inDim: number, outDim: number, scale: number): void {
    for (let o = 0; o < outDim; o++) {
      for (let i = 0; i < inDim; i++) {
        let sum = 0;
        for (let t = 0; t < rows; t++) sum += dY[t * outDim + o]! * X[t * inDim + i]!;
        G[o * inDim + i] = G[o * inDim + i]! + scale * sum;
      }
    }
  },
};
