/**
 * Built-in configuration used when no config file is given: the four model names of the
 * ChatGPT API guide this product follows, routed to OpenAI when OPENAI_API_KEY is set and
 * to the offline mock provider otherwise.
 */
import type { ConfigInput } from './schema.js';

interface BuiltInModel {
  name: string;
  /** The OpenAI model that serves this name when OPENAI_API_KEY is set. */
  openAiModel: string;
  contextWindow: number;
  vision: boolean;
}

export const BUILT_IN_MODELS: readonly BuiltInModel[] = [
  { name: 'gpt-4-2026', openAiModel: 'gpt-4.1', contextWindow: 128_000, vision: true },
  { name: 'gpt-4-turbo', openAiModel: 'gpt-4-turbo', contextWindow: 128_000, vision: true },
  { name: 'gpt-4-vision', openAiModel: 'gpt-4.1', contextWindow: 128_000, vision: true },
  { name: 'gpt-4-32k', openAiModel: 'gpt-4.1-mini', contextWindow: 32_000, vision: false },
];

export function defaultConfig(environment: NodeJS.ProcessEnv): ConfigInput {
  const apiKey = environment.OPENAI_API_KEY;
  if (apiKey) {
    const baseUrl = environment.OPENAI_BASE_URL || 'https://api.openai.com/v1';
    return {
      models: BUILT_IN_MODELS.map((model) => ({
        name: model.name,
        provider: 'openai-compatible' as const,
        base_url: baseUrl,
        api_key: apiKey,
        model: model.openAiModel,
        context_window: model.contextWindow,
        vision: model.vision,
        owned_by: 'openai',
      })),
    };
  }
  return {
    models: BUILT_IN_MODELS.map((model) => ({
      name: model.name,
      provider: 'mock' as const,
      context_window: model.contextWindow,
      vision: model.vision,
      owned_by: 'chatgate-mock',
    })),
  };
}
