/** OpenAI sampling parameters → node-llama-cpp generation options, and stop reasons back. */
import type { LLamaContextualRepeatPenalty } from 'node-llama-cpp';

export interface SamplingRequest {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  top_k?: number | null | undefined;
  min_p?: number | null | undefined;
  repetition_penalty?: number | null | undefined;
}

export interface SamplingOptions {
  temperature: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  customStopTriggers?: string[];
  repeatPenalty: false | LLamaContextualRepeatPenalty;
}

/**
 * OpenAI's defaults (temperature 1, no penalties). Choice `index` > 0 of a seeded request
 * gets seed + index, so n choices differ but stay reproducible.
 */
export function samplingOptions(request: SamplingRequest, index: number): SamplingOptions {
  // top_p defaults to 1 as with OpenAI (llama.cpp's own default is 0.95); top_k keeps llama.cpp's 40.
  const options: SamplingOptions = { temperature: request.temperature ?? 1, topP: request.top_p ?? 1, repeatPenalty: false };
  if (request.top_k != null && request.top_k > 0) options.topK = request.top_k;
  if (request.min_p != null && request.min_p > 0) options.minP = request.min_p;
  if (request.seed != null) options.seed = request.seed + index;
  const stops = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const nonEmpty = stops.filter((stop) => stop.length > 0);
  if (nonEmpty.length > 0) options.customStopTriggers = nonEmpty;
  const repetition = request.repetition_penalty ?? 1;
  if (request.presence_penalty || request.frequency_penalty || repetition !== 1) {
    options.repeatPenalty = {
      penalty: repetition,
      presencePenalty: request.presence_penalty ?? 0,
      frequencyPenalty: request.frequency_penalty ?? 0,
    };
  }
  return options;
}

export type LlamaStopReason = 'eogToken' | 'stopGenerationTrigger' | 'customStopTrigger' | 'functionCalls' | 'maxTokens' | 'abort';

export function finishReason(stopReason: LlamaStopReason): 'stop' | 'length' {
  return stopReason === 'maxTokens' ? 'length' : 'stop';
}
