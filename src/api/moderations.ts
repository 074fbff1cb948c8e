/**
 * `POST /v1/moderations` in OpenAI's shape, answered by the model named in the config's
 * `moderation.model` (docs/guardrails.md): an openai-compatible model passes the request to
 * its upstream's `/moderations`; any other model (llama-cpp, mock, router) is asked for the
 * categories at temperature 0, constrained by a JSON schema, and its answer is shaped into
 * OpenAI's result.
 */
import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import type { OpenAiCompatibleModelConfig } from '../config/schema.js';
import { GatewayError, invalidRequest } from '../errors/gateway-error.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import { chatCompletionRequest } from '../openai/chat-completion-request.js';
import { matchesSchema } from '../providers/mock/json-schema-check.js';
import { upstreamHttpError } from '../providers/openai-compatible/upstream-error.js';
import { invalidModelOutput } from '../guardrails/errors.js';
import type { ApiDependencies } from './api-dependencies.js';
import { newObjectId } from './ids.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { noteModel, setUsage } from './request-recording.js';

export const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;
export type ModerationCategory = (typeof MODERATION_CATEGORIES)[number];

const textPart = z.object({ type: z.literal('text'), text: z.string() }).strict();
const imagePart = z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string() }).loose() }).strict();

export const moderationRequest = z
  .object({
    input: z.union([z.string(), z.array(z.string()).min(1).max(32), z.array(z.discriminatedUnion('type', [textPart, imagePart])).min(1).max(32)]),
    model: z.string().min(1).optional(),
  })
  .strict();
export type ModerationRequest = z.infer<typeof moderationRequest>;

export interface ModerationResult {
  flagged: boolean;
  categories: Record<ModerationCategory, boolean>;
  category_scores: Record<ModerationCategory, number>;
  category_applied_input_types: Record<ModerationCategory, string[]>;
}

/** The texts to moderate, one result each (a multimodal array is one input); images are refused. */
export function moderationTexts(input: ModerationRequest['input']): string[] {
  if (typeof input === 'string') return [input];
  if (input.every((item): item is string => typeof item === 'string')) return input;
  const parts = input as Array<z.infer<typeof textPart> | z.infer<typeof imagePart>>;
  const imageIndex = parts.findIndex((part) => part.type === 'image_url');
  if (imageIndex >= 0) {
    throw invalidRequest('Image inputs are not supported by this moderation model: send text parts only.', `input[${imageIndex}]`, 'image_input_not_supported');
  }
  return [parts.map((part) => (part.type === 'text' ? part.text : '')).join('\n')];
}

const booleanMap = Object.fromEntries(MODERATION_CATEGORIES.map((name) => [name, { type: 'boolean' }]));
const scoreMap = Object.fromEntries(MODERATION_CATEGORIES.map((name) => [name, { type: 'number', minimum: 0, maximum: 1 }]));
export const MODERATION_SCHEMA = {
  type: 'object',
  properties: {
    categories: { type: 'object', properties: booleanMap, required: [...MODERATION_CATEGORIES], additionalProperties: false },
    category_scores: { type: 'object', properties: scoreMap, required: [...MODERATION_CATEGORIES], additionalProperties: false },
  },
  required: ['categories', 'category_scores'],
  additionalProperties: false,
};

const INSTRUCTIONS =
  'You are a content moderation classifier. For the user text, decide for each category whether the text falls in it ' +
  '(true/false) and give a score from 0 to 1 of how likely it does. Categories: ' +
  MODERATION_CATEGORIES.join(', ') +
  '. Answer only with the JSON object {"categories": {...}, "category_scores": {...}}.';

/** OpenAI's result from a model's JSON answer; a category marked true with no score counts as flagged. */
export function shapeModerationResult(answer: unknown): ModerationResult {
  const value = answer as { categories: Record<string, boolean>; category_scores: Record<string, number> };
  const categories = {} as Record<ModerationCategory, boolean>;
  const scores = {} as Record<ModerationCategory, number>;
  const applied = {} as Record<ModerationCategory, string[]>;
  for (const name of MODERATION_CATEGORIES) {
    categories[name] = value.categories[name] === true;
    scores[name] = Math.min(1, Math.max(0, Number(value.category_scores[name]) || 0));
    applied[name] = ['text'];
  }
  return { flagged: Object.values(categories).some(Boolean), categories, category_scores: scores, category_applied_input_types: applied };
}

async function moderateWithModel(context: Context<AppEnv>, model: ResolvedModel, texts: string[]): Promise<ModerationResult[]> {
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const results: ModerationResult[] = [];
  for (const [index, text] of texts.entries()) {
    const request = chatCompletionRequest.parse({
      model: model.config.name,
      temperature: 0,
      messages: [
        { role: 'system', content: INSTRUCTIONS },
        { role: 'user', content: text },
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'moderation', strict: true, schema: MODERATION_SCHEMA } },
    });
    const result = await model.provider.chat(request, { model: model.config, signal: context.req.raw.signal, requestId: context.get('requestId') });
    usage.prompt_tokens += result.usage.prompt_tokens;
    usage.completion_tokens += result.usage.completion_tokens;
    usage.total_tokens += result.usage.total_tokens;
    let answer: unknown;
    try {
      answer = JSON.parse(result.choices[0]?.message.content ?? '');
    } catch {
      answer = undefined;
    }
    if (!matchesSchema(answer, MODERATION_SCHEMA)) {
      setUsage(context, usage);
      throw invalidModelOutput(`The moderation model '${model.config.name}' did not answer with the categories as JSON (input ${index}).`);
    }
    results.push(shapeModerationResult(answer));
  }
  setUsage(context, usage);
  return results;
}

function headersOf(response: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  return headers;
}

/** Sends the request to the upstream's `/moderations` and returns its answer as is. */
async function moderateUpstream(context: Context<AppEnv>, config: OpenAiCompatibleModelConfig, request: ModerationRequest): Promise<Response> {
  const base = config.base_url.endsWith('/') ? config.base_url.slice(0, -1) : config.base_url;
  const url = new URL(base);
  const target = `${url.origin}${url.pathname.replace(/\/$/, '')}/moderations${url.search}`;
  const apiKey = config.api_key === undefined || config.api_key === '' ? undefined : config.api_key;
  const headers: Record<string, string> = { ...config.headers, 'content-type': 'application/json', accept: 'application/json', 'x-request-id': context.get('requestId') };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const signal = AbortSignal.any([context.req.raw.signal, AbortSignal.timeout(config.timeout_ms)]);
  let response: Response;
  let text: string;
  try {
    response = await fetch(target, { method: 'POST', headers, body: JSON.stringify(request), signal });
    text = await response.text();
  } catch {
    throw new GatewayError({
      status: 502,
      source: 'upstream',
      type: 'server_error',
      code: 'upstream_unreachable',
      message: `The moderation upstream of the model '${config.name}' could not be reached.`,
    });
  }
  if (!response.ok) throw upstreamHttpError(response.status, headersOf(response), text, apiKey);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (body === null || typeof body !== 'object' || !Array.isArray((body as { results?: unknown }).results)) {
    throw new GatewayError({ status: 502, source: 'upstream', type: 'server_error', code: 'invalid_upstream_response', message: 'The moderation upstream sent an answer that is not a moderation object.' });
  }
  return context.json(body as Record<string, unknown>);
}

export function moderationsHandler(dependencies: Pick<ApiDependencies, 'models' | 'moderation' | 'maxBodyBytes'>) {
  return async (context: Context<AppEnv>): Promise<Response> => {
    const request = parseWith(moderationRequest, await readJsonBody(context, dependencies.maxBodyBytes));
    const configured = dependencies.moderation;
    if (!configured) {
      throw invalidRequest(
        "Moderation is not configured on this server. Add `moderation: { model: <a configured model name> }` to the config file (see docs/guardrails.md).",
        null,
        'moderation_not_configured',
      );
    }
    const model = dependencies.models.resolve(configured.model);
    noteModel(context, model.config, undefined);
    if (model.config.provider === 'openai-compatible') return moderateUpstream(context, model.config, request);
    const results = await moderateWithModel(context, model, moderationTexts(request.input));
    return context.json({ id: newObjectId('modr-'), model: request.model ?? model.config.name, results });
  };
}
