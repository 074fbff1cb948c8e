/**
 * A llama model with LoRA adapters: the forward pass of llama.cpp's LLM_ARCH_LLAMA graph
 * (token embedding → per block: RMSNorm, q/k/v projections, RoPE, causal GQA attention,
 * output projection, residual, RMSNorm, SwiGLU FFN, residual → final RMSNorm → output
 * projection) and its backward pass for the LoRA parameters only (base weights frozen).
 *
 * Every adapted projection is y = W x + (alpha / rank) · B (A x), as llama.cpp applies an
 * adapter at scale 1.
 *
 * Loss convention: for a sequence tokens[0..n-1] the inputs are tokens[0..n-2] (position p
 * holds tokens[p]) and position p predicts tokens[p+1]; it counts when lossMask[p+1] = 1 (the
 * mask is indexed like the tokens, on the predicted token; lossMask[0] is never used). The
 * loss is the cross-entropy summed over the counted targets and divided by `normaliser` (the
 * trainer passes the batch's total count, giving the batch mean).
 *
 * Activations kept for the backward pass live in a workspace reused between sequences (it
 * grows to the longest sequence seen), so a training step allocates almost nothing.
 */
import {
  applyRope, attentionBackward, attentionForward, buildRopeTable, rmsNormBackward, rmsNormForward, swigluBackward, swigluForward,
  type AttentionShape, type RopeTable,
} from './llama-ops.js';
import type { FloatArray, LlamaWeights } from './llama-weights.js';
import type { MatmulKernels } from './kernel-types.js';
import type { LoraParameters } from './lora-parameters.js';
import type { LoraTarget } from './lora-types.js';
import { floatAllocator, type FloatAllocator } from './float-allocator.js';

/** Output positions whose logits are computed together (bounds the logits buffer). */
const LOGIT_CHUNK = 32;

interface LayerCache {
  xIn: FloatArray; h1: FloatArray; inv1: FloatArray;
  q: FloatArray; k: FloatArray; v: FloatArray; uQ: FloatArray; uK: FloatArray; uV: FloatArray;
  probs: FloatArray; attn: FloatArray; uO: FloatArray;
  x2: FloatArray; h2: FloatArray; inv2: FloatArray;
  gate: FloatArray; up: FloatArray; act: FloatArray; uGate: FloatArray; uUp: FloatArray; uDown: FloatArray;
}

interface Workspace {
  capacity: number;
  layers: LayerCache[];
  xFinal: FloatArray; hFinal: FloatArray; invFinal: FloatArray;
  // backward scratch
  dX: FloatArray; dH: FloatArray; dAttn: FloatArray; dq: FloatArray; dk: FloatArray; dv: FloatArray;
  dAct: FloatArray; dGate: FloatArray; dUp: FloatArray; dU: FloatArray; scores: Float64Array;
  // logits chunk
  chunkH: FloatArray; chunkLogits: FloatArray; chunkDH: FloatArray;
  rope: RopeTable;
}

export interface SequenceLoss {
  /** Σ cross-entropy over the counted targets (natural log), before dividing. */
  lossSum: number;
  /** Targets counted. */
  tokens: number;
  /** Counted targets the model ranks first (greedy-correct) before the update. */
  correct: number;
}

export class LlamaLoraModel {
  private workspace: Workspace | undefined;

  constructor(
    readonly weights: LlamaWeights,
    readonly lora: LoraParameters,
    private readonly kernels: MatmulKernels,
    private readonly alloc: FloatAllocator = floatAllocator(weights.precision, false),
  ) {}

  private ensureWorkspace(rows: number): Workspace {
    if (this.workspace && this.workspace.capacity >= rows) return this.workspace;
    const hp = this.weights.hparams;
    const capacity = Math.min(Math.max(rows, this.workspace ? this.workspace.capacity * 2 : 16), Math.max(rows, hp.contextLength));
    const T = capacity;
    const d = hp.embeddingLength;
    const qDim = hp.headCount * hp.headDim;
    const kvDim = hp.headCountKv * hp.headDim;
    const ff = hp.feedForwardLength;
    const r = this.lora.rank;
    const a = (n: number) => this.alloc(n);
    this.workspace = undefined; // let the old one go before allocating the new one
    const layers: LayerCache[] = [];
    for (let l = 0; l < hp.blockCount; l++) {
      layers.push({
        xIn: a(T * d), h1: a(T * d), inv1: a(T),
        q: a(T * qDim), k: a(T * kvDim), v: a(T * kvDim), uQ: a(T * r), uK: a(T * r), uV: a(T * r),
        probs: a(hp.headCount * T * T), attn: a(T * qDim), uO: a(T * r),
        x2: a(T * d), h2: a(T * d), inv2: a(T),
        gate: a(T * ff), up: a(T * ff), act: a(T * ff), uGate: a(T * r), uUp: a(T * r), uDown: a(T * r),
      });
    }
    const ropeDims = hp.ropeDimensionCount;
    this.workspace = {
      capacity,
      layers,
      xFinal: a(T * d), hFinal: a(T * d), invFinal: a(T),
      dX: a(T * d), dH: a(T * d), dAttn: a(T * qDim), dq: a(T * qDim), dk: a(T * kvDim), dv: a(T * kvDim),
      dAct: a(T * ff), dGate: a(T * ff), dUp: a(T * ff), dU: a(T * r), scores: new Float64Array(T),
      chunkH: a(LOGIT_CHUNK * d), chunkLogits: a(LOGIT_CHUNK * hp.vocabSize), chunkDH: a(LOGIT_CHUNK * d),
      rope: buildRopeTable(T, ropeDims, hp.ropeFreqBase, hp.ropeFreqScale, this.weights.ropeFreqFactors),
    };
    return this.workspace;
  }

  /** y = W x (+ LoRA) for `rows` rows; keeps u = A x in `u`. */
  private project(layer: number, target: LoraTarget, W: FloatArray, X: FloatArray, Y: FloatArray, u: FloatArray, rows: number, inDim: number, outDim: number): void {
    this.kernels.matmul(X, W, Y, rows, inDim, outDim, 1, false);
    const m = this.lora.get(layer, target);
    if (!m) return;
    this.kernels.matmul(X, m.a, u, rows, inDim, this.lora.rank, 1, false);
    this.kernels.matmul(u, m.b, Y, rows, this.lora.rank, outDim, this.lora.scale, true);
  }

  /** Backward of `project`: LoRA gradients, and dX += ∂y/∂x · dY when dX is given. */
  private projectBackward(
    layer: number, target: LoraTarget, W: FloatArray, X: FloatArray, u: FloatArray, dY: FloatArray, dX: FloatArray | undefined,
    dU: FloatArray, rows: number, inDim: number, outDim: number,
  ): void {
    const k = this.kernels;
    if (dX) k.matmulTransposed(dY, W, dX, rows, inDim, outDim, 1, true);
    const m = this.lora.get(layer, target);
    if (!m) return;
    const r = this.lora.rank;
    const s = this.lora.scale;
    k.outerAccumulate(dY, u, m.gradB, rows, r, outDim, s);
    k.matmulTransposed(dY, m.b, dU, rows, r, outDim, s, false);
    k.outerAccumulate(dU, X, m.gradA, rows, inDim, r, 1);
    if (dX) k.matmulTransposed(dU, m.a, dX, rows, inDim, r, 1, true);
  }

  /** Runs the blocks over `tokens` (positions 0..rows-1), leaving the final normed states in ws.hFinal. */
  private forwardBlocks(tokens: ArrayLike<number>, rows: number): Workspace {
    const hp = this.weights.hparams;
    if (rows > hp.contextLength) throw new Error(`sequence of ${rows} tokens exceeds the model's context length ${hp.contextLength}`);
    const ws = this.ensureWorkspace(rows);
    const d = hp.embeddingLength;
    const qDim = hp.headCount * hp.headDim;
    const kvDim = hp.headCountKv * hp.headDim;
    const ff = hp.feedForwardLength;
    const eps = hp.rmsEpsilon;
    const W = this.weights;
    const shape: AttentionShape = { rows, heads: hp.headCount, kvHeads: hp.headCountKv, headDim: hp.headDim };

    let x = ws.layers.length > 0 ? ws.layers[0]!.xIn : ws.xFinal;
    for (let t = 0; t < rows; t++) {
      const token = tokens[t]!;
      if (!(token >= 0 && token < hp.vocabSize)) throw new Error(`token id ${token} is outside the vocabulary (0..${hp.vocabSize - 1})`);
      const src = token * d;
      for (let i = 0; i < d; i++) x[t * d + i] = W.tokenEmbd[src + i]!;
    }
    for (let l = 0; l < hp.blockCount; l++) {
      const c = ws.layers[l]!;
      const w = W.layers[l]!;
      // c.xIn already holds x (written by the previous block or the embedding)
      rmsNormForward(c.xIn, w.attnNorm, c.h1, c.inv1, rows, d, eps);
      this.project(l, 'attn_q', w.attnQ, c.h1, c.q, c.uQ, rows, d, qDim);
      this.project(l, 'attn_k', w.attnK, c.h1, c.k, c.uK, rows, d, kvDim);
      this.project(l, 'attn_v', w.attnV, c.h1, c.v, c.uV, rows, d, kvDim);
      applyRope(c.q, rows, hp.headCount, hp.headDim, ws.rope, false);
      applyRope(c.k, rows, hp.headCountKv, hp.headDim, ws.rope, false);
      attentionForward(c.q, c.k, c.v, c.attn, c.probs, shape);
      this.project(l, 'attn_output', w.attnOutput, c.attn, c.x2, c.uO, rows, qDim, d);
      for (let i = 0; i < rows * d; i++) c.x2[i] = c.x2[i]! + c.xIn[i]!;
      rmsNormForward(c.x2, w.ffnNorm, c.h2, c.inv2, rows, d, eps);
      this.project(l, 'ffn_gate', w.ffnGate, c.h2, c.gate, c.uGate, rows, d, ff);
      this.project(l, 'ffn_up', w.ffnUp, c.h2, c.up, c.uUp, rows, d, ff);
      swigluForward(c.gate, c.up, c.act, rows * ff);
      const next = l + 1 < hp.blockCount ? ws.layers[l + 1]!.xIn : ws.xFinal;
      this.project(l, 'ffn_down', w.ffnDown, c.act, next, c.uDown, rows, ff, d);
      for (let i = 0; i < rows * d; i++) next[i] = next[i]! + c.x2[i]!;
      x = next;
    }
    rmsNormForward(x, W.outputNorm, ws.hFinal, ws.invFinal, rows, d, eps);
    return ws;
  }

  /** Logits (rows × vocab, row p = the distribution after tokens[0..p]) for every position. */
  logits(tokens: ArrayLike<number>): Float32Array {
    const hp = this.weights.hparams;
    const rows = tokens.length;
    const ws = this.forwardBlocks(tokens, rows);
    const out = new Float32Array(rows * hp.vocabSize);
    const d = hp.embeddingLength;
    for (let start = 0; start < rows; start += LOGIT_CHUNK) {
      const n = Math.min(LOGIT_CHUNK, rows - start);
      for (let i = 0; i < n * d; i++) ws.chunkH[i] = ws.hFinal[start * d + i]!;
      this.kernels.matmul(ws.chunkH, this.weights.output, ws.chunkLogits, n, d, hp.vocabSize, 1, false);
      for (let i = 0; i < n * hp.vocabSize; i++) out[start * hp.vocabSize + i] = ws.chunkLogits[i]!;
    }
    return out;
  }

  /**
   * The summed cross-entropy of the counted targets of one sequence (see the header for the
   * convention); with `withGradients`, adds the gradient of lossSum / normaliser to the LoRA
   * gradient buffers.
   */
  lossAndGradients(tokens: ArrayLike<number>, lossMask: ArrayLike<number>, normaliser: number, withGradients: boolean): SequenceLoss {
    if (tokens.length !== lossMask.length) throw new Error('tokens and lossMask must have the same length');
    const rows = tokens.length - 1;
    const positions: number[] = [];
    for (let p = 0; p < rows; p++) if (lossMask[p + 1] === 1) positions.push(p);
    if (rows < 1 || positions.length === 0) return { lossSum: 0, tokens: 0, correct: 0 };
    const hp = this.weights.hparams;
    const d = hp.embeddingLength;
    const V = hp.vocabSize;
    const ws = this.forwardBlocks(tokens, rows);
    if (withGradients) ws.dX.fill(0, 0, rows * d);
    const dH = ws.dH;
    if (withGradients) dH.fill(0, 0, rows * d);

    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < positions.length; start += LOGIT_CHUNK) {
      const n = Math.min(LOGIT_CHUNK, positions.length - start);
      for (let r = 0; r < n; r++) {
        const p = positions[start + r]!;
        for (let i = 0; i < d; i++) ws.chunkH[r * d + i] = ws.hFinal[p * d + i]!;
      }
      const L = ws.chunkLogits;
      this.kernels.matmul(ws.chunkH, this.weights.output, L, n, d, V, 1, false);
      for (let r = 0; r < n; r++) {
        const p = positions[start + r]!;
        const target = tokens[p + 1]!;
        const o = r * V;
        let max = -Infinity;
        let best = 0;
        for (let j = 0; j < V; j++) {
          if (L[o + j]! > max) {
            max = L[o + j]!;
            best = j;
          }
        }
        if (best === target) correct++;
        let sum = 0;
        for (let j = 0; j < V; j++) sum += Math.exp(L[o + j]! - max);
        const logSumExp = max + Math.log(sum);
        lossSum += logSumExp - L[o + target]!;
        if (withGradients) {
          // dLoss/dlogit_j = (softmax_j − [j = target]) / normaliser
          const inv = 1 / (sum * normaliser);
          for (let j = 0; j < V; j++) L[o + j] = Math.exp(L[o + j]! - max) * inv;
          L[o + target] = L[o + target]! - 1 / normaliser;
        }
      }
      if (withGradients) {
        this.kernels.matmulTransposed(L, this.weights.output, ws.chunkDH, n, d, V, 1, false);
        for (let r = 0; r < n; r++) {
          const p = positions[start + r]!;
          for (let i = 0; i < d; i++) dH[p * d + i] = ws.chunkDH[r * d + i]!;
        }
      }
    }
    if (withGradients) {
      rmsNormBackward(ws.xFinal, this.weights.outputNorm, ws.invFinal, dH, ws.dX, rows, d);
      for (let l = hp.blockCount - 1; l >= 0; l--) this.backwardBlock(l, ws, rows);
    }
    return { lossSum, tokens: positions.length, correct };
  }

  /** ws.dX: gradient w.r.t. block l's output on entry, w.r.t. its input on exit. */
  private backwardBlock(l: number, ws: Workspace, rows: number): void {
    const hp = this.weights.hparams;
    const d = hp.embeddingLength;
    const qDim = hp.headCount * hp.headDim;
    const kvDim = hp.headCountKv * hp.headDim;
    const ff = hp.feedForwardLength;
    const c = ws.layers[l]!;
    const w = this.weights.layers[l]!;
    const dX = ws.dX;
    const shape: AttentionShape = { rows, heads: hp.headCount, kvHeads: hp.headCountKv, headDim: hp.headDim };

    // FFN: x3 = x2 + down(silu(gate(h2)) · up(h2)), h2 = norm(x2)
    ws.dAct.fill(0, 0, rows * ff);
    this.projectBackward(l, 'ffn_down', w.ffnDown, c.act, c.uDown, dX, ws.dAct, ws.dU, rows, ff, d);
    swigluBackward(c.gate, c.up, ws.dAct, ws.dGate, ws.dUp, rows * ff);
    ws.dH.fill(0, 0, rows * d);
    this.projectBackward(l, 'ffn_gate', w.ffnGate, c.h2, c.uGate, ws.dGate, ws.dH, ws.dU, rows, d, ff);
    this.projectBackward(l, 'ffn_up', w.ffnUp, c.h2, c.uUp, ws.dUp, ws.dH, ws.dU, rows, d, ff);
    rmsNormBackward(c.x2, w.ffnNorm, c.inv2, ws.dH, dX, rows, d);

    // Attention: x2 = xIn + wo(attention(rope(wq h1), rope(wk h1), wv h1)), h1 = norm(xIn)
    ws.dAttn.fill(0, 0, rows * qDim);
    this.projectBackward(l, 'attn_output', w.attnOutput, c.attn, c.uO, dX, ws.dAttn, ws.dU, rows, qDim, d);
    ws.dq.fill(0, 0, rows * qDim);
    ws.dk.fill(0, 0, rows * kvDim);
    ws.dv.fill(0, 0, rows * kvDim);
    attentionBackward(c.q, c.k, c.v, c.probs, ws.dAttn, ws.dq, ws.dk, ws.dv, ws.scores, shape);
    applyRope(ws.dq, rows, hp.headCount, hp.headDim, ws.rope, true);
    applyRope(ws.dk, rows, hp.headCountKv, hp.headDim, ws.rope, true);
    // The first block's input (the embedding) is frozen: no need for its gradient.
    const needInput = l > 0;
    const dH1 = needInput ? ws.dH : undefined;
    if (dH1) dH1.fill(0, 0, rows * d);
    this.projectBackward(l, 'attn_q', w.attnQ, c.h1, c.uQ, ws.dq, dH1, ws.dU, rows, d, qDim);
    this.projectBackward(l, 'attn_k', w.attnK, c.h1, c.uK, ws.dk, dH1, ws.dU, rows, d, kvDim);
    this.projectBackward(l, 'attn_v', w.attnV, c.h1, c.uV, ws.dv, dH1, ws.dU, rows, d, kvDim);
    if (dH1) rmsNormBackward(c.xIn, w.attnNorm, c.inv1, dH1, dX, rows, d);
  }
}
