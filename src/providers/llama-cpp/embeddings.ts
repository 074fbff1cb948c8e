/**
 * Embeddings with node-llama-cpp: each input (a text, or token ids passed as they are) goes
 * through the model's embedding context (see LoadedModels.acquireEmbedding) and comes back
 * scaled to unit length, as OpenAI's embeddings are. Usage counts the inputs' tokens
 * (model.tokenize, without the BOS/EOS the embedding context adds).
 */
import type { LlamaEmbeddingContext, LlamaModel, Token } from 'node-llama-cpp';
import { invalidRequest } from '../../errors/gateway-error.js';
import { normalizeInPlace } from '../../openai/embedding-encoding.js';
import { embeddingInputs, type EmbeddingRequest } from '../../openai/embedding-request.js';
import type { EmbeddingResult } from '../spec.js';

function inputParam(request: EmbeddingRequest, index: number): string {
  return typeof request.input === 'string' || typeof request.input[0] === 'number' ? 'input' : `input[${index}]`;
}

export async function embedWithLlama(
  request: EmbeddingRequest,
  model: LlamaModel,
  embedding: LlamaEmbeddingContext,
  contextSize: number,
  signal: AbortSignal,
): Promise<EmbeddingResult> {
  const vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length;
  const inputs = embeddingInputs(request.input);
  // Check every input before evaluating any.
  let promptTokens = 0;
  const prepared = inputs.map((input, index) => {
    if (typeof input !== 'string' && vocabularySize !== undefined && input.some((id) => id >= vocabularySize)) {
      throw invalidRequest(`Invalid '${inputParam(request, index)}': token ids must be below ${vocabularySize}, the vocabulary size of this model.`, inputParam(request, index), 'invalid_value');
    }
    const tokens = typeof input === 'string' ? model.tokenize(input) : (input as Token[]);
    promptTokens += tokens.length;
    const length = embedding.calculateInputLength(typeof input === 'string' ? input : [...tokens]);
    // node-llama-cpp needs the input strictly shorter than the context.
    if (length >= contextSize) {
      throw invalidRequest(
        `This model's maximum context length is ${contextSize - 1} tokens, however you requested ${length} tokens in '${inputParam(request, index)}'. Please reduce your input.`,
        inputParam(request, index),
        'context_length_exceeded',
      );
    }
    return typeof input === 'string' ? input : [...tokens];
  });
  const embeddings: Float32Array[] = [];
  for (const input of prepared) {
    signal.throwIfAborted();
    const result = await embedding.getEmbeddingFor(input);
    embeddings.push(normalizeInPlace(Float32Array.from(result.vector)));
  }
  return { embeddings, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
}
