/** The choice between the two implementations of the dense kernels (kernel-types.ts): optimised, reference. */
import type { MatmulKernels } from './kernel-types.js';
import { optimisedKernels } from './kernels-optimised.js';
import { referenceKernels } from './kernels-reference.js';

export type KernelChoice = 'optimised' | 'reference';

export function selectKernels(choice: KernelChoice): MatmulKernels {
  return choice === 'reference' ? referenceKernels : optimisedKernels;
}
