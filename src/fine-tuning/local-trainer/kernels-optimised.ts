/**
 * Optimised kernels: register-blocked loops (4 weight rows × 2 token rows per pass, 8
 * independent accumulators) that read every array contiguously, reuse each loaded value
 * several times and allocate nothing. Same results as the reference kernels up to rounding.
 */
import type { MatmulKernels } from './kernel-types.js';
import type { FloatArray } from './llama-weights.js';

function matmul(X: FloatArray, W: FloatArray, Y: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
  let o = 0;
  for (; o + 4 <= outDim; o += 4) {
    const w0 = o * inDim;
    const w1 = w0 + inDim;
    const w2 = w1 + inDim;
    const w3 = w2 + inDim;
    let t = 0;
    for (; t + 2 <= rows; t += 2) {
      const x0 = t * inDim;
      const x1 = x0 + inDim;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let i = 0; i < inDim; i++) {
        const a = X[x0 + i]!;
        const b = X[x1 + i]!;
        const c0 = W[w0 + i]!;
        const c1 = W[w1 + i]!;
        const c2 = W[w2 + i]!;
        const c3 = W[w3 + i]!;
        s00 += a * c0; s01 += a * c1; s02 += a * c2; s03 += a * c3;
        s10 += b * c0; s11 += b * c1; s12 += b * c2; s13 += b * c3;
      }
      const y0 = t * outDim + o;
      const y1 = y0 + outDim;
      if (accumulate) {
        Y[y0] = Y[y0]! + scale * s00; Y[y0 + 1] = Y[y0 + 1]! + scale * s01; Y[y0 + 2] = Y[y0 + 2]! + scale * s02; Y[y0 + 3] = Y[y0 + 3]! + scale * s03;
        Y[y1] = Y[y1]! + scale * s10; Y[y1 + 1] = Y[y1 + 1]! + scale * s11; Y[y1 + 2] = Y[y1 + 2]! + scale * s12; Y[y1 + 3] = Y[y1 + 3]! + scale * s13;
      } else {
        Y[y0] = scale * s00; Y[y0 + 1] = scale * s01; Y[y0 + 2] = scale * s02; Y[y0 + 3] = scale * s03;
        Y[y1] = scale * s10; Y[y1 + 1] = scale * s11; Y[y1 + 2] = scale * s12; Y[y1 + 3] = scale * s13;
      }
    }
    for (; t < rows; t++) {
      const x0 = t * inDim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const a = X[x0 + i]!;
        s0 += a * W[w0 + i]!; s1 += a * W[w1 + i]!; s2 += a * W[w2 + i]!; s3 += a * W[w3 + i]!;
      }
      const y0 = t * outDim + o;
      if (accumulate) {
        Y[y0] = Y[y0]! + scale * s0; Y[y0 + 1] = Y[y0 + 1]! + scale * s1; Y[y0 + 2] = Y[y0 + 2]! + scale * s2; Y[y0 + 3] = Y[y0 + 3]! + scale * s3;
      } else {
        Y[y0] = scale * s0; Y[y0 + 1] = scale * s1; Y[y0 + 2] = scale * s2; Y[y0 + 3] = scale * s3;
      }
    }
  }
  for (; o < outDim; o++) {
    const w0 = o * inDim;
    for (let t = 0; t < rows; t++) {
      const x0 = t * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += X[x0 + i]! * W[w0 + i]!;
      const y = t * outDim + o;
      Y[y] = (accumulate ? Y[y]! : 0) + scale * s;
    }
  }
}

function matmulTransposed(dY: FloatArray, W: FloatArray, dX: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
  if (!accumulate) dX.fill(0, 0, rows * inDim);
  let o = 0;
  for (; o + 4 <= outDim; o += 4) {
    const w0 = o * inDim;
    const w1 = w0 + inDim;
    const w2 = w1 + inDim;
    const w3 = w2 + inDim;
    let t = 0;
    for (; t + 2 <= rows; t += 2) {
      const g0 = t * outDim + o;
      const g1 = g0 + outDim;
      const c00 = scale * dY[g0]!, c01 = scale * dY[g0 + 1]!, c02 = scale * dY[g0 + 2]!, c03 = scale * dY[g0 + 3]!;
      const c10 = scale * dY[g1]!, c11 = scale * dY[g1 + 1]!, c12 = scale * dY[g1 + 2]!, c13 = scale * dY[g1 + 3]!;
      if (c00 === 0 && c01 === 0 && c02 === 0 && c03 === 0 && c10 === 0 && c11 === 0 && c12 === 0 && c13 === 0) continue;
      const x0 = t * inDim;
      const x1 = x0 + inDim;
      for (let i = 0; i < inDim; i++) {
        const a = W[w0 + i]!;
        const b = W[w1 + i]!;
        const c = W[w2 + i]!;
        const d = W[w3 + i]!;
        dX[x0 + i] = dX[x0 + i]! + (c00 * a + c01 * b + c02 * c + c03 * d);
        dX[x1 + i] = dX[x1 + i]! + (c10 * a + c11 * b + c12 * c + c13 * d);
      }
    }
    for (; t < rows; t++) {
      const g0 = t * outDim + o;
      const c0 = scale * dY[g0]!, c1 = scale * dY[g0 + 1]!, c2 = scale * dY[g0 + 2]!, c3 = scale * dY[g0 + 3]!;
      const x0 = t * inDim;
      for (let i = 0; i < inDim; i++) {
        dX[x0 + i] = dX[x0 + i]! + (c0 * W[w0 + i]! + c1 * W[w1 + i]! + c2 * W[w2 + i]! + c3 * W[w3 + i]!);
      }
    }
  }
  for (; o < outDim; o++) {
    const w0 = o * inDim;
    for (let t = 0; t < rows; t++) {
      const c = scale * dY[t * outDim + o]!;
      if (c === 0) continue;
      const x0 = t * inDim;
      for (let i = 0; i < inDim; i++) dX[x0 + i] = dX[x0 + i]! + c * W[w0 + i]!;
    }
  }
}

function outerAccumulate(dY: FloatArray, X: FloatArray, G: FloatArray, rows: number, inDim: number, outDim: number, scale: number): void {
  let o = 0;
  for (; o + 4 <= outDim; o += 4) {
    const r0 = o * inDim;
    const r1 = r0 + inDim;
    const r2 = r1 + inDim;
    const r3 = r2 + inDim;
    let t = 0;
    for (; t + 2 <= rows; t += 2) {
      const g0 = t * outDim + o;
      const g1 = g0 + outDim;
      const c00 = scale * dY[g0]!, c01 = scale * dY[g0 + 1]!, c02 = scale * dY[g0 + 2]!, c03 = scale * dY[g0 + 3]!;
      const c10 = scale * dY[g1]!, c11 = scale * dY[g1 + 1]!, c12 = scale * dY[g1 + 2]!, c13 = scale * dY[g1 + 3]!;
      const x0 = t * inDim;
      const x1 = x0 + inDim;
      for (let i = 0; i < inDim; i++) {
        const a = X[x0 + i]!;
        const b = X[x1 + i]!;
        G[r0 + i] = G[r0 + i]! + (c00 * a + c10 * b);
        G[r1 + i] = G[r1 + i]! + (c01 * a + c11 * b);
        G[r2 + i] = G[r2 + i]! + (c02 * a + c12 * b);
        G[r3 + i] = G[r3 + i]! + (c03 * a + c13 * b);
      }
    }
    for (; t < rows; t++) {
      const g0 = t * outDim + o;
      const c0 = scale * dY[g0]!, c1 = scale * dY[g0 + 1]!, c2 = scale * dY[g0 + 2]!, c3 = scale * dY[g0 + 3]!;
      const x0 = t * inDim;
      for (let i = 0; i < inDim; i++) {
        const a = X[x0 + i]!;
        G[r0 + i] = G[r0 + i]! + c0 * a;
        G[r1 + i] = G[r1 + i]! + c1 * a;
        G[r2 + i] = G[r2 + i]! + c2 * a;
        G[r3 + i] = G[r3 + i]! + c3 * a;
      }
    }
  }
  for (; o < outDim; o++) {
    const r0 = o * inDim;
    for (let t = 0; t < rows; t++) {
      const c = scale * dY[t * outDim + o]!;
      const x0 = t * inDim;
      for (let i = 0; i < inDim; i++) G[r0 + i] = G[r0 + i]! + c * X[x0 + i]!;
    }
  }
}

export const optimisedKernels: MatmulKernels = { matmul, matmulTransposed, outerAccumulate };
