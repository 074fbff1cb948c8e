/** OpenAI sampling parameters → node-llama-cpp generation options, and stop reasons back. */
import type { LLamaContextualRepeatPenalty } from 'node-llama-cpp';

export interface SamplingRequest {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
}

export interface SamplingOptions {
  temperature: number;
  topP?: number;
  seed?: number;
  customStopTriggers?: string[];
  repeatPenalty: false | LLamaContextualRepeatPenalty;
}

/**
 * OpenAI's defaults (temperature 1, no penalties). Choice `index` > 0 of a seeded request
 * gets seed + index, so n choices differ but stay reproducible.
 */
export function samplingOptions(request: SamplingRequest, index: number): SamplingOptions {
  const options: SamplingOptions = { temperature: request.temperature ?? 1, repeatPenalty: false };
  if (request.top_p != null) options.topP = request.top_p;
  if (request.seed != null) options.seed = request.seed + index;
  const stops = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const nonEmpty = stops.filter((stop) => stop.length > 0);
  if (nonEmpty.length > 0) options.customStopTriggers = nonEmpty;
  if (request.presence_penalty || request.frequency_penalty) {
    options.repeatPenalty = {
      penalty: 1,
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
