/** The request body of the legacy `POST /v1/completions`. */
import { z } from 'zod';
import { samplingExtensions } from './sampling-extensions.js';

const prompt = z.union([
  z.string(),
  z.array(z.string()).min(1),
  z.array(z.number().int().min(0)).min(1),
  z.array(z.array(z.number().int().min(0)).min(1)).min(1),
]);

export const completionRequest = z
  .object({
    model: z.string().min(1),
    prompt,
    suffix: z.string().nullable().optional(),
    max_tokens: z.number().int().min(0).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    best_of: z.number().int().min(1).max(20).nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
    logprobs: z.number().int().min(0).max(5).nullable().optional(),
    echo: z.boolean().nullable().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    ...samplingExtensions,
    logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullable().optional(),
    seed: z.number().int().nullable().optional(),
    user: z.string().optional(),
  })
  .loose();

export type CompletionRequest = z.infer<typeof completionRequest>;
