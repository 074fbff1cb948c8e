/**
 * The non-matmul operations of llama.cpp's LLM_ARCH_LLAMA graph, forward and backward:
 * RMSNorm, RoPE in "NORM" mode (adjacent pairs), causal grouped-query attention, SwiGLU.
 * They follow ggml's CPU definitions (see the comments) so that logits match llama.cpp's.
 */
import type { FloatArray } from './llama-weights.js';

/**
 * y = x / sqrt(mean(x²) + eps) · w per row (ggml_rms_norm then ggml_mul). Stores 1/rms per
 * row in `inv`.
 */
export function rmsNormForward(x: FloatArray, w: FloatArray, y: FloatArray, inv: FloatArray, rows: number, dim: number, eps: number): void {
  for (let t = 0; t < rows; t++) {
    const o = t * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[o + i]!;
      sum += v * v;
    }
    const r = 1 / Math.sqrt(sum / dim + eps);
    inv[t] = r;
    for (let i = 0; i < dim; i++) y[o + i] = x[o + i]! * r * w[i]!;
  }
}

/** dx += d(rmsnorm)/dx · dy:  dx = r·(w∘dy) − x·r³·Σ(w∘dy∘x)/dim. */
export function rmsNormBackward(x: FloatArray, w: FloatArray, inv: FloatArray, dy: FloatArray, dx: FloatArray, rows: number, dim: number): void {
  for (let t = 0; t < rows; t++) {
    const o = t * dim;
    const r = inv[t]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += w[i]! * dy[o + i]! * x[o + i]!;
    const k = (r * r * r * dot) / dim;
    for (let i = 0; i < dim; i++) dx[o + i] = dx[o + i]! + r * w[i]! * dy[o + i]! - x[o + i]! * k;
  }
}

export interface RopeTable {
  /** positions × (ropeDims / 2) */
  cos: Float64Array;
  sin: Float64Array;
  half: number;
}

/**
 * cos/sin for positions 0..count-1 as ggml's rope cache computes them (float32 arithmetic):
 * theta_scale = base^(−2/n_rot); pair i has theta = pos · theta_scale^i (iterated in float),
 * divided by the rope frequency factor if any, times freq_scale.
 */
export function buildRopeTable(count: number, ropeDims: number, base: number, freqScale: number, freqFactors?: FloatArray): RopeTable {
  const half = ropeDims / 2;
  const cos = new Float64Array(count * half);
  const sin = new Float64Array(count * half);
  const f = Math.fround;
  const thetaScale = f(Math.pow(base, -2 / ropeDims));
  for (let p = 0; p < count; p++) {
    let theta = f(p);
    for (let i = 0; i < half; i++) {
      const factor = freqFactors ? freqFactors[i]! : 1;
      const angle = f(f(freqScale) * f(theta / factor));
      cos[p * half + i] = f(Math.cos(angle));
      sin[p * half + i] = f(Math.sin(angle));
      theta = f(theta * thetaScale);
    }
  }
  return { cos, sin, half };
}

/**
 * Rotates adjacent pairs (x[2i], x[2i+1]) of the first ropeDims values of every head of every
 * row (LLAMA_ROPE_TYPE_NORM), in place: position of row t is t. `inverse` rotates by −theta
 * (the backward pass: the transpose of a rotation is its inverse).
 */
export function applyRope(x: FloatArray, rows: number, heads: number, headDim: number, table: RopeTable, inverse: boolean): void {
  const { cos, sin, half } = table;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < rows; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i]!;
        const s = sign * sin[t * half + i]!;
        const x0 = x[o + 2 * i]!;
        const x1 = x[o + 2 * i + 1]!;
        x[o + 2 * i] = x0 * c - x1 * s;
        x[o + 2 * i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

export interface AttentionShape {
  rows: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Causal attention: for head h (kv head h / (heads / kvHeads)), o_t = Σ_{j≤t} softmax_j(q_t·k_j
 * · scale) v_j with scale 1/sqrt(headDim). q: rows × heads·headDim, k/v: rows ×
 * kvHeads·headDim. `probs` (heads × rows × rows, row-major, only j ≤ t written) keeps the
 * softmax for the backward pass.
 */
export function attentionForward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, probs: FloatArray, shape: AttentionShape): void {
  const { rows, heads, kvHeads, headDim } = shape;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const qStride = heads * headDim;
  const kvStride = kvHeads * headDim;
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < rows; t++) {
      const qo = t * qStride + h * headDim;
      const po = (h * rows + t) * rows;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        const ko = j * kvStride + g * headDim;
        let s = 0;
        for (let i = 0; i < headDim; i++) s += q[qo + i]! * k[ko + i]!;
        s *= scale;
        probs[po + j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        const e = Math.exp(probs[po + j]! - max);
        probs[po + j] = e;
        sum += e;
      }
      const invSum = 1 / sum;
      const oo = t * qStride + h * headDim;
      for (let i = 0; i < headDim; i++) out[oo + i] = 0;
      for (let j = 0; j <= t; j++) {
        const p = probs[po + j]! * invSum;
        probs[po + j] = p;
        const vo = j * kvStride + g * headDim;
        for (let i = 0; i < headDim; i++) out[oo + i] = out[oo + i]! + p * v[vo + i]!;
      }
    }
  }
}

/**
 * Backward of attentionForward: from dOut, accumulates dq, dk, dv (which must start zeroed or
 * hold earlier contributions). `scratch` holds at least `rows` values.
 */
export function attentionBackward(
  q: FloatArray, k: FloatArray, v: FloatArray, probs: FloatArray, dOut: FloatArray,
  dq: FloatArray, dk: FloatArray, dv: FloatArray, scratch: Float64Array, shape: AttentionShape,
): void {
  const { rows, heads, kvHeads, headDim } = shape;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const qStride = heads * headDim;
  const kvStride = kvHeads * headDim;
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < rows; t++) {
      const qo = t * qStride + h * headDim;
      const po = (h * rows + t) * rows;
      // dP_j = dOut_t · v_j;  dv_j += P_tj dOut_t
      let weighted = 0;
      for (let j = 0; j <= t; j++) {
        const vo = j * kvStride + g * headDim;
        const p = probs[po + j]!;
        let dp = 0;
        for (let i = 0; i < headDim; i++) {
          const d = dOut[qo + i]!;
          dp += d * v[vo + i]!;
          dv[vo + i] = dv[vo + i]! + p * d;
        }
        scratch[j] = dp;
        weighted += p * dp;
      }
      // dS_j = P_tj (dP_j − Σ P dP);  dq_t += scale Σ dS_j k_j;  dk_j += scale dS_j q_t
      for (let j = 0; j <= t; j++) {
        const ds = probs[po + j]! * (scratch[j]! - weighted) * scale;
        if (ds === 0) continue;
        const ko = j * kvStride + g * headDim;
        for (let i = 0; i < headDim; i++) {
          dq[qo + i] = dq[qo + i]! + ds * k[ko + i]!;
          dk[ko + i] = dk[ko + i]! + ds * q[qo + i]!;
        }
      }
    }
  }
}

/** act = silu(gate) · up  (SwiGLU, llama.cpp's LLM_FFN_SILU + LLM_FFN_PAR). */
export function swigluForward(gate: FloatArray, up: FloatArray, act: FloatArray, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i]!;
    act[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/** dGate = dAct · up · silu'(gate), dUp = dAct · silu(gate); silu'(g) = σ(g)(1 + g(1 − σ(g))). */
export function swigluBackward(gate: FloatArray, up: FloatArray, dAct: FloatArray, dGate: FloatArray, dUp: FloatArray, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i]!;
    const s = 1 / (1 + Math.exp(-g));
    const d = dAct[i]!;
    dUp[i] = d * g * s;
    dGate[i] = d * up[i]! * s * (1 + g * (1 - s));
  }
}
