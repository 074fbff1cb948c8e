/**
 * The interface of the dense kernels the trainer's forward and backward passes are built on
 * (implemented by kernels-optimised.ts and kernels-reference.ts; matmul-kernels.ts chooses).
 *
 * Layouts are row-major. A weight W of GGUF shape ne = [inDim, outDim] is outDim rows of
 * inDim values (W[o * inDim + i]); activations are `rows` (tokens) × features.
 */
import type { FloatArray } from './llama-weights.js';

export interface MatmulKernels {
  /** Y[t, o] (=|+=) scale · Σ_i X[t, i] · W[o, i]  — the forward product y = W x. */
  matmul(X: FloatArray, W: FloatArray, Y: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void;
  /** dX[t, i] (=|+=) scale · Σ_o dY[t, o] · W[o, i]  — the gradient w.r.t. the input. */
  matmulTransposed(dY: FloatArray, W: FloatArray, dX: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void;
  /** G[o, i] += scale · Σ_t dY[t, o] · X[t, i]  — the gradient w.r.t. a weight. */
  outerAccumulate(dY: FloatArray, X: FloatArray, G: FloatArray, rows: number, inDim: number, outDim: number, scale: number): void;
}
