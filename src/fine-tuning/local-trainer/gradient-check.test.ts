/**
 * The backward pass against finite differences: in float64 (weights of f32 and f16 models
 * widened), the analytic LoRA gradients match central differences of the loss, with both the
 * optimised and the reference kernels; and the two kernel sets give the same loss.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTinyGguf } from '../../../test/support/tiny-gguf.js';
import { writeFileSync } from 'node:fs';
import { openGguf } from '../../gguf/reader.js';
import { loadLlamaWeights, type Precision } from './llama-weights.js';
import { LoraParameters } from './lora-parameters.js';
import { LORA_TARGETS } from './lora-types.js';
import { LlamaLoraModel } from './llama-lora-model.js';
import { selectKernels, type KernelChoice } from './matmul-kernels.js';
import { mulberry32 } from '../../util/seeded-random.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-lora-grad-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const TOKENS = [1, 300, 271, 70, 262, 330, 261, 300, 2, 4, 3, 290];
const MASK = [0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1];

function makeModel(tensorType: 'f32' | 'f16', kernels: KernelChoice, precision: Precision): LlamaLoraModel {
  const path = join(directory, `grad-${tensorType}.gguf`);
  writeFileSync(path, buildTinyGguf({ seed: 3, tensorType, embeddingLength: 32, blockCount: 2, feedForwardLength: 48, headCount: 4, headCountKv: 2 }));
  const file = openGguf(path);
  const weights = loadLlamaWeights(file, precision);
  file.close();
  const lora = new LoraParameters(weights.hparams, 3, 6, LORA_TARGETS, precision, 9);
  // Non-zero B, so that A's gradients are non-zero too.
  const random = mulberry32(77);
  for (const m of lora.matrices) for (let i = 0; i < m.b.length; i++) m.b[i] = (random() * 2 - 1) * 0.2;
  return new LlamaLoraModel(weights, lora, selectKernels(kernels));
}

function loss(model: LlamaLoraModel): number {
  const { lossSum, tokens } = model.lossAndGradients(TOKENS, MASK, 1, false);
  return lossSum / tokens;
}

describe.each(['f32', 'f16'] as const)('LoRA gradients (%s model)', (tensorType) => {
  it.each(['optimised', 'reference'] as const)('match finite differences with %s kernels', (kernels) => {
    const model = makeModel(tensorType, kernels, 'f64');
    const count = MASK.slice(1).filter((m) => m === 1).length;
    model.lora.zeroGradients();
    model.lossAndGradients(TOKENS, MASK, count, true);
    const random = mulberry32(5);
    const eps = 1e-5;
    let checked = 0;
    let worst = 0;
    for (const m of model.lora.matrices) {
      for (const [values, grads] of [[m.a, m.gradA], [m.b, m.gradB]] as const) {
        for (let sample = 0; sample < 3; sample++) {
          const i = Math.floor(random() * values.length);
          const original = values[i]!;
          values[i] = original + eps;
          const plus = loss(model);
          values[i] = original - eps;
          const minus = loss(model);
          values[i] = original;
          const numeric = (plus - minus) / (2 * eps);
          const analytic = grads[i]!;
          const error = Math.abs(numeric - analytic) / Math.max(1e-4, Math.abs(numeric) + Math.abs(analytic));
          worst = Math.max(worst, error);
          expect(error, `blk.${m.layer}.${m.target} ${values === m.a ? 'A' : 'B'}[${i}]: numeric ${numeric}, analytic ${analytic}`).toBeLessThan(1e-5);
          checked++;
        }
      }
    }
    console.log(`[grad ${tensorType} ${kernels}] ${checked} entries, worst relative error ${worst.toExponential(2)}`);
  });

  it('gives the same loss and gradients in float32 with either kernel set', () => {
    const optimised = makeModel(tensorType, 'optimised', 'f32');
    const reference = makeModel(tensorType, 'reference', 'f32');
    const a = optimised.lossAndGradients(TOKENS, MASK, 8, true);
    const b = reference.lossAndGradients(TOKENS, MASK, 8, true);
    expect(Math.abs(a.lossSum - b.lossSum) / 8).toBeLessThan(1e-5);
    for (let k = 0; k < optimised.lora.matrices.length; k++) {
      const ga = optimised.lora.matrices[k]!.gradA;
      const gb = reference.lora.matrices[k]!.gradA;
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < ga.length; i++) {
        scale = Math.max(scale, Math.abs(gb[i]!));
        diff = Math.max(diff, Math.abs(ga[i]! - gb[i]!));
      }
      expect(diff).toBeLessThanOrEqual(1e-4 * scale + 1e-9);
    }
  });
});
