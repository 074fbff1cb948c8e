/**
 * AdamW (decoupled weight decay) over a fixed list of parameter tensors, with a state (step
 * count and first/second moments) that can be exported and restored exactly for checkpoints.
 *
 *   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
 *   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε) − lr · weightDecay · p
 */
import type { FloatArray } from './llama-weights.js';

export interface AdamWOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  /** One moment array per parameter, in the parameters' order. */
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private step = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(private readonly parameters: Array<{ value: FloatArray; grad: FloatArray }>, options: AdamWOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.m = parameters.map((p) => new Float32Array(p.value.length));
    this.v = parameters.map((p) => new Float32Array(p.value.length));
  }

  get stepCount(): number {
    return this.step;
  }

  /** One update from the parameters' current gradients. */
  update(): void {
    this.step++;
    const { beta1: b1, beta2: b2, epsilon: eps, learningRate: lr, weightDecay: wd } = this;
    const correction1 = 1 - Math.pow(b1, this.step);
    const correction2 = 1 - Math.pow(b2, this.step);
    for (let k = 0; k < this.parameters.length; k++) {
      const { value, grad } = this.parameters[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i]!;
        const mi = b1 * m[i]! + (1 - b1) * g;
        const vi = b2 * v[i]! + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const p = value[i]!;
        value[i] = p - lr * (mi / correction1 / (Math.sqrt(vi / correction2) + eps)) - lr * wd * p;
      }
    }
  }

  /** A copy of the state. */
  exportState(): AdamWState {
    return { step: this.step, m: this.m.map((a) => a.slice()), v: this.v.map((a) => a.slice()) };
  }

  importState(state: AdamWState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) throw new Error('optimizer state does not match the parameters');
    for (let k = 0; k < this.m.length; k++) {
      if (state.m[k]!.length !== this.m[k]!.length || state.v[k]!.length !== this.v[k]!.length) throw new Error('optimizer state does not match the parameters');
      this.m[k]!.set(state.m[k]!);
      this.v[k]!.set(state.v[k]!);
    }
    this.step = state.step;
  }
}
