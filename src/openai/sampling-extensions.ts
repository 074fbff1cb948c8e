/**
 * Sampling parameters outside OpenAI's API that vLLM, llama-server and Ollama accept in the
 * same request body (the `openai` SDK sends them through `extra_body`). The llama-cpp
 * provider applies them; OpenAI-compatible upstreams receive them as sent.
 */
import { z } from 'zod';

export const samplingExtensions = {
  /** Sample from the k most likely tokens only (0 or -1: no limit). */
  top_k: z.number().int().min(-1).nullable().optional(),
  /** Drop tokens less likely than min_p × the most likely one. */
  min_p: z.number().min(0).max(1).nullable().optional(),
  /** Multiplicative penalty on tokens already present (1: none). */
  repetition_penalty: z.number().gt(0).max(10).nullable().optional(),
};
