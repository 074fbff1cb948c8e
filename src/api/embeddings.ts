/**
 * `POST /v1/embeddings`: validate, resolve the model, call the provider's `embed`, then apply
 * `dimensions` (longer vectors are truncated and re-normalized to unit length) and
 * `encoding_format` ('float': number arrays; 'base64': little-endian float32 bytes).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { checkModelAllowed } from '../keys/access-policy.js';
import { GatewayError, invalidRequest, missingParameter } from '../errors/gateway-error.js';
import { fitDimensions, toBase64Embedding } from '../openai/embedding-encoding.js';
import { MAX_EMBEDDING_INPUTS, embeddingInputs, embeddingRequest, type CreateEmbeddingResponse, type EmbeddingRequest } from '../openai/embedding-request.js';
import type { EmbeddingResult } from '../providers/spec.js';
import type { ApiDependencies } from './api-dependencies.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { providerCall } from './provider-stream.js';
import { noteTarget } from './served-target.js';
import { noteModel, setUsage } from './request-recording.js';
import { reserveEmbedding } from './request-metering.js';
import { checkEmbeddingContextWindow } from '../gateway/context-window.js';
import { applyEmbeddingPii } from './pii-policy.js';

/**
 * Validates the body. A missing, empty or too long `input` gets its own message (the schema's
 * union alone would blame the wrong branch).
 */
export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const input = (body as Record<string, unknown>)['input'];
    if (input === undefined) throw missingParameter('input');
    if (input === '') throw invalidRequest("Invalid 'input': the input cannot be an empty string.", 'input', 'invalid_value');
    if (Array.isArray(input) && input.length === 0) throw invalidRequest("Invalid 'input': the input cannot be an empty array.", 'input', 'invalid_value');
    if (Array.isArray(input) && input.length > MAX_EMBEDDING_INPUTS && typeof input[0] !== 'number') {
      throw invalidRequest(`Invalid 'input': array too long. Expected an array with maximum length ${MAX_EMBEDDING_INPUTS}.`, 'input', 'array_above_max_length');
    }
  }
  return parseWith(embeddingRequest, body);
}

/** Turns a provider's vectors into OpenAI's answer (or throws the 400 of a too large `dimensions`). */
export function toEmbeddingResponse(request: EmbeddingRequest, result: EmbeddingResult, modelName: string): CreateEmbeddingResponse {
  const expected = embeddingInputs(request.input).length;
  if (result.embeddings.length !== expected) {
    throw new GatewayError({
      status: 502,
      source: 'upstream',
      type: 'upstream_error',
      code: 'upstream_invalid_response',
      message: `The model answered ${result.embeddings.length} embeddings for ${expected} inputs.`,
    });
  }
  const base64 = request.encoding_format === 'base64';
  return {
    object: 'list',
    data: result.embeddings.map((vector, index) => {
      const fitted = fitDimensions(vector, request.dimensions ?? undefined);
      if (fitted === undefined) {
        throw invalidRequest(
          `Invalid 'dimensions': ${String(request.dimensions)} is larger than the ${vector.length} dimensions of model '${modelName}'.`,
          'dimensions',
          'invalid_value',
        );
      }
      return { object: 'embedding', index, embedding: base64 ? toBase64Embedding(fitted) : Array.from(fitted) };
    }),
    model: modelName,
    usage: { prompt_tokens: result.usage.prompt_tokens, total_tokens: result.usage.total_tokens },
  };
}

export function embeddingsHandler(dependencies: ApiDependencies) {
  return async (context: Context<AppEnv>): Promise<Response> => {
    const request = parseEmbeddingRequest(await readJsonBody(context, dependencies.maxBodyBytes));
    checkModelAllowed(context.get('principal'), request.model);
    const model = dependencies.models.resolve(request.model, context.get('principal')?.project);
    noteModel(context, model.config, request.user);
    const provider = model.provider;
    if (provider.embed === undefined) {
      throw invalidRequest(`The model '${model.config.name}' does not support embeddings.`, 'model', 'model_not_supported');
    }
    await applyEmbeddingPii(context, dependencies, model, request);
    await checkEmbeddingContextWindow(embeddingInputs(request.input), model.config, dependencies.tokenCounters);
    await reserveEmbedding(context, dependencies, model.config, embeddingInputs(request.input));
    const result = await provider.embed(request, providerCall(context, model, context.req.raw.signal));
    noteTarget(context, result.target);
    const response = toEmbeddingResponse(request, result, model.config.name);
    setUsage(context, { prompt_tokens: response.usage.prompt_tokens, completion_tokens: 0, total_tokens: response.usage.total_tokens });
    return context.json(response);
  };
}
