/**
 * Routing by task: which targets of a router model a request should go to, decided from
 * what the request is — its prompt length, whether it offers tools, carries images or asks
 * for JSON — by the model's rules (first match wins), else by asking a small classifier
 * model for a label, else the default. The decision orders the targets; unless the policy is
 * exclusive, the other targets still follow as fallbacks.
 */
import type { RoutingPolicy } from '../config/schema.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';

export interface RequestFeatures {
  promptTokens: number;
  tools: boolean;
  images: boolean;
  json: boolean;
  /** The last user message's text (what a classifier reads). */
  lastUserText: string;
}

export interface RoutingDecision {
  /** Target ids in order of preference. */
  targetIds: string[];
  /** Why: `rule 1 (tools)`, `classifier: complex`, `default`. */
  reason: string;
}

/** Asks the classifier for one of the labels; undefined when it could not say. */
export type Classify = (features: RequestFeatures, labels: string[], instructions: string, signal: AbortSignal) => Promise<string | undefined>;

export const DEFAULT_CLASSIFIER_INSTRUCTIONS =
  "Label the user's request for routing. 'simple': small talk, short factual questions, rewording or formatting. " +
  "'complex': reasoning, mathematics, code, multi-step analysis, long or technical documents. Other labels: as named.";

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part: { type?: string; text?: string }) => (part.type === 'text' ? (part.text ?? '') : '')).join(' ');
}

export function chatFeatures(request: ChatCompletionRequest, promptTokens: number): RequestFeatures {
  const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
  return {
    promptTokens,
    tools: (request.tools?.length ?? 0) > 0 || (request.functions?.length ?? 0) > 0,
    images: request.messages.some((message) => Array.isArray(message.content) && (message.content as Array<{ type?: string }>).some((part) => part.type === 'image_url')),
    json: request.response_format?.type === 'json_object' || request.response_format?.type === 'json_schema',
    lastUserText: lastUser ? textOf(lastUser.content) : '',
  };
}

/** Text prompts (legacy completions) have no tools, images or JSON output. */
export function promptFeatures(prompt: string, promptTokens: number): RequestFeatures {
  return { promptTokens, tools: false, images: false, json: false, lastUserText: prompt };
}

function matches(condition: RoutingPolicy['rules'][number]['when'], features: RequestFeatures): boolean {
  if (condition.min_prompt_tokens !== undefined && features.promptTokens < condition.min_prompt_tokens) return false;
  if (condition.max_prompt_tokens !== undefined && features.promptTokens > condition.max_prompt_tokens) return false;
  if (condition.tools !== undefined && features.tools !== condition.tools) return false;
  if (condition.images !== undefined && features.images !== condition.images) return false;
  if (condition.json !== undefined && features.json !== condition.json) return false;
  return true;
}

function describe(condition: RoutingPolicy['rules'][number]['when']): string {
  return Object.entries(condition)
    .map(([key, value]) => (typeof value === 'boolean' ? (value ? key : `no ${key}`) : `${key} ${String(value)}`))
    .join(', ');
}

export async function decideRoute(policy: RoutingPolicy, features: RequestFeatures, classify: Classify | undefined, signal: AbortSignal): Promise<RoutingDecision | undefined> {
  const index = policy.rules.findIndex((rule) => matches(rule.when, features));
  if (index >= 0) return { targetIds: policy.rules[index]!.targets, reason: `rule ${index + 1} (${describe(policy.rules[index]!.when)})` };
  const classifier = policy.classifier;
  if (classifier && classify) {
    const labels = Object.keys(classifier.labels);
    const timeout = AbortSignal.timeout(classifier.timeout_ms);
    const label = await classify(features, labels, classifier.instructions ?? DEFAULT_CLASSIFIER_INSTRUCTIONS, AbortSignal.any([signal, timeout])).catch(() => undefined);
    if (label !== undefined && classifier.labels[label]) return { targetIds: classifier.labels[label]!, reason: `classifier: ${label}` };
  }
  if (policy.default) return { targetIds: policy.default, reason: 'default' };
  return undefined;
}
