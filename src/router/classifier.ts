/**
 * The classifier of routing by task: asks a configured (small) model to label a request,
 * with its answer constrained to `{"label": <one of the labels>}` (response_format
 * json_schema), at temperature 0. Its calls are not audited or metered: they are part of
 * routing the request that is.
 */
import type { ResolvedModel } from '../gateway/model-registry.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { Classify } from './task-routing.js';

/** Characters of the user's message the classifier reads. */
export const CLASSIFIER_INPUT_LIMIT = 4000;

export function createClassifier(modelName: string, resolve: (name: string) => ResolvedModel | undefined): Classify {
  return async (features, labels, instructions, signal) => {
    const model = resolve(modelName);
    if (!model) return undefined;
    const request: ChatCompletionRequest = {
      model: modelName,
      messages: [
        { role: 'system', content: `${instructions}\nAnswer only with JSON: {"label": "<${labels.join(' | ')}>"}.` },
        { role: 'user', content: features.lastUserText.slice(0, CLASSIFIER_INPUT_LIMIT) },
      ],
      temperature: 0,
      max_tokens: 24,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'route', strict: true, schema: { type: 'object', properties: { label: { type: 'string', enum: labels } }, required: ['label'], additionalProperties: false } },
      },
    };
    const result = await model.provider.chat(request, { model: model.config, signal, requestId: 'route-classifier' });
    const content = result.choices[0]?.message.content;
    if (typeof content !== 'string') return undefined;
    try {
      const label = (JSON.parse(content) as { label?: unknown }).label;
      return typeof label === 'string' && labels.includes(label) ? label : undefined;
    } catch {
      return undefined;
    }
  };
}
