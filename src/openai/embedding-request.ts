/** The request body of `POST /v1/embeddings` and the shape of its answer. */
import { z } from 'zod';

/** OpenAI's limit on the number of inputs of one request. */
export const MAX_EMBEDDING_INPUTS = 2048;

/**
 * Largest `dimensions` accepted (OpenAI's largest embedding model has 3,072). Without a
 * bound, the mock provider built vectors of the requested size: 2^31 blocked the server.
 */
export const MAX_EMBEDDING_DIMENSIONS = 16_384;

const tokenIds = z.array(z.number().int().min(0)).min(1);

const input = z.union([
  z.string().min(1),
  z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS),
  tokenIds,
  z.array(tokenIds).min(1).max(MAX_EMBEDDING_INPUTS),
]);

export const embeddingRequest = z
  .object({
    model: z.string().min(1),
    input,
    encoding_format: z.enum(['float', 'base64']).optional(),
    dimensions: z.number().int().min(1).max(MAX_EMBEDDING_DIMENSIONS).optional(),
    user: z.string().optional(),
  })
  .loose();

export type EmbeddingRequest = z.infer<typeof embeddingRequest>;

/** One input of an embedding request: a text, or the token ids of one. */
export type EmbeddingInput = string | number[];

/** The request's `input` as a list: one entry per embedding of the answer. */
export function embeddingInputs(value: EmbeddingRequest['input']): EmbeddingInput[] {
  if (typeof value === 'string') return [value];
  if (value.length > 0 && typeof value[0] === 'number') return [value as number[]];
  return value as EmbeddingInput[];
}

export interface EmbeddingUsage {
  prompt_tokens: number;
  total_tokens: number;
}

export interface EmbeddingObject {
  object: 'embedding';
  index: number;
  /** Floats, or (encoding_format 'base64') the base64 of their little-endian float32 bytes. */
  embedding: number[] | string;
}

export interface CreateEmbeddingResponse {
  object: 'list';
  data: EmbeddingObject[];
  model: string;
  usage: EmbeddingUsage;
}
