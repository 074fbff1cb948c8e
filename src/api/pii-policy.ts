/**
 * PII policies in the request pipeline (docs/pii.md, "Policies"). Each route calls one
 * function after its checks and before the response cache and the provider:
 *
 *   applyChatPii(context, dependencies, model, request);        // chat: messages, tool calls and results
 *   applyCompletionPii(context, dependencies, model, request);  // legacy completions: string prompts, suffix
 *   applyEmbeddingPii(context, dependencies, model, request);   // embeddings: string inputs
 *
 * They rewrite the request in place according to the effective policy — the key's `pii`
 * over the model's `pii.policy` over the top-level `pii.policy`:
 *
 * - `off`: nothing is scanned or changed.
 * - `mask`: detected values are replaced by typed placeholders (`[EMAIL_1]`) before the
 *   request goes upstream (and to the response cache); the answer keeps the placeholders.
 * - `pseudonymize`: as `mask`, and the answer's text and tool-call arguments get the originals
 *   back for the client (`restoreChatResult`, `restoreCompletionResult`, `restoringParts` for
 *   streams, where a placeholder may be split across deltas). The response cache stores the
 *   answer in its placeholder form; each request restores its own values.
 * - `block`: a request containing PII is refused with 400 `pii_detected`, naming the kinds and
 *   counts found, never the values.
 *
 * What was found is reported as kinds and counts only (`email=2,card=1`): the response header
 * `x-chatgate-pii` and the audit record's `piiCounts`. `maskAuditBody` redacts bodies before
 * they are written to the audit log, whatever the policy.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ModelConfig, PiiConfig, PiiPolicyName } from '../config/schema.js';
import { invalidRequest } from '../errors/gateway-error.js';
import { setResponseHeader } from '../middleware/response-headers.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { EmbeddingRequest } from '../openai/embedding-request.js';
import { detectAsync, Pseudonymizer, StreamRestorer } from '../pii/index.js';
import { PiiSession } from '../pii/pii-session.js';
import { yieldToEventLoop } from '../util/yield-to-event-loop.js';
import type { BuiltinPiiKind, DetectOptions } from '../pii/types.js';
import type { ChatResult, CompletionResult, StreamPart } from '../providers/spec.js';
import type { ApiKeySettings } from '../storage/spec.js';

/** Moved to pii/pii-session.ts; this re-export goes when the importers switch (issue 14, P1-final). */
export { formatCounts, PiiSession } from '../pii/pii-session.js';

export const PII_HEADER = 'x-chatgate-pii';

export type KeyPiiSetting = NonNullable<ApiKeySettings['pii']>;

/** What the routes need: the top-level `pii` section (absent: policy off, all detectors on). */
export interface PiiDependencies {
  pii?: PiiConfig | null;
}

export interface EffectivePii {
  policy: PiiPolicyName;
  /** Which level decided the policy. */
  source: 'key' | 'model' | 'server';
  options: DetectOptions;
}

/** Detector options of the server, with a model's detector switches over them. */
export function detectOptionsOf(config: PiiConfig | null | undefined, model?: Pick<ModelConfig, 'pii'> | null): DetectOptions {
  const options: DetectOptions = {};
  const detectors: Partial<Record<BuiltinPiiKind, boolean>> = {};
  for (const source of [config?.detectors, model?.pii?.detectors]) {
    for (const [kind, on] of Object.entries(source ?? {})) if (typeof on === 'boolean') detectors[kind as BuiltinPiiKind] = on;
  }
  if (Object.keys(detectors).length > 0) options.detectors = detectors;
  if (config?.phone_regions && config.phone_regions.length > 0) options.phoneRegions = config.phone_regions as DetectOptions['phoneRegions'];
  if (config?.custom && config.custom.length > 0) options.custom = config.custom;
  return options;
}

/** The effective policy: the key's setting over the model's over the server's. */
export function resolvePiiPolicy(
  config: PiiConfig | null | undefined,
  model: Pick<ModelConfig, 'pii'> | null | undefined,
  keySetting: KeyPiiSetting | undefined,
): EffectivePii {
  const options = detectOptionsOf(config, model);
  if (keySetting !== undefined && keySetting !== 'default') return { policy: keySetting, source: 'key', options };
  if (model?.pii?.policy !== undefined) return { policy: model.pii.policy, source: 'model', options };
  return { policy: config?.policy ?? 'off', source: 'server', options };
}

/** Reports what was found (header, audit record) and refuses the request under `block`. */
function finishScan(context: Context<AppEnv>, session: PiiSession): void {
  const counts = session.counts();
  if (counts !== null) {
    context.set('piiCounts', counts);
    setResponseHeader(context, PII_HEADER, counts);
  }
  if (session.policy === 'block' && counts !== null) {
    const named = counts.split(',').map((entry) => entry.replace('=', ': ')).join(', ');
    throw invalidRequest(
      `The request contains personal data (${named}) and this model's PII policy blocks it. Remove it, or ask the operator about the policy.`,
      null,
      'pii_detected',
    );
  }
}

function sessionFor(context: Context<AppEnv>, dependencies: PiiDependencies, model: { config: ModelConfig }): PiiSession | null {
  const effective = resolvePiiPolicy(dependencies.pii, model.config, context.get('principal')?.settings.pii);
  if (effective.policy === 'off') return null;
  const session = new PiiSession(effective.policy, effective.options);
  context.set('pii', session);
  return session;
}

type TextParts = Array<{ type: string; text?: unknown; refusal?: unknown }>;

/**
 * Chat: every message's text and text parts, assistant tool-call and function-call arguments,
 * tool and function results; texts of any size are scanned in turns that share the event loop.
 */
export async function applyChatPii(
  context: Context<AppEnv>,
  dependencies: PiiDependencies,
  model: { config: ModelConfig },
  request: ChatCompletionRequest,
): Promise<void> {
  const session = sessionFor(context, dependencies, model);
  if (!session) return;
  for (const message of request.messages) {
    const content: unknown = message.content;
    if (typeof content === 'string') message.content = await session.textAsync(content);
    else if (Array.isArray(content)) {
      for (const part of content as TextParts) {
        if (part.type === 'text' && typeof part.text === 'string') part.text = await session.textAsync(part.text);
        else if (part.type === 'refusal' && typeof part.refusal === 'string') part.refusal = await session.textAsync(part.refusal);
      }
    }
    if (message.role === 'assistant') {
      if (typeof message.refusal === 'string') message.refusal = await session.textAsync(message.refusal);
      for (const call of message.tool_calls ?? []) call.function.arguments = session.jsonText(call.function.arguments);
      if (message.function_call) message.function_call.arguments = session.jsonText(message.function_call.arguments);
    }
  }
  finishScan(context, session);
}

/** Legacy completions: string prompts (token-id prompts are left alone) and `suffix`. */
export async function applyCompletionPii(
  context: Context<AppEnv>,
  dependencies: PiiDependencies,
  model: { config: ModelConfig },
  request: CompletionRequest,
): Promise<void> {
  const session = sessionFor(context, dependencies, model);
  if (!session) return;
  const prompt: unknown = request.prompt;
  if (typeof prompt === 'string') request.prompt = await session.textAsync(prompt);
  else if (Array.isArray(prompt) && prompt.some((item) => typeof item === 'string')) {
    const items: unknown[] = [];
    for (const item of prompt as unknown[]) items.push(typeof item === 'string' ? await session.textAsync(item) : item);
    request.prompt = items as CompletionRequest['prompt'];
  }
  if (typeof request.suffix === 'string') request.suffix = await session.textAsync(request.suffix);
  finishScan(context, session);
}

/** Embeddings: string inputs (token-id inputs are left alone). Answers are vectors: nothing to restore. */
export async function applyEmbeddingPii(
  context: Context<AppEnv>,
  dependencies: PiiDependencies,
  model: { config: ModelConfig },
  request: EmbeddingRequest,
): Promise<void> {
  const session = sessionFor(context, dependencies, model);
  if (!session) return;
  const input: unknown = request.input;
  if (typeof input === 'string') request.input = await session.textAsync(input);
  else if (Array.isArray(input) && input.some((item) => typeof item === 'string')) {
    const items: unknown[] = [];
    for (const item of input as unknown[]) items.push(typeof item === 'string' ? await session.textAsync(item) : item);
    request.input = items as EmbeddingRequest['input'];
  }
  finishScan(context, session);
}

/** The answer for the client: originals back in text, refusals and tool-call arguments (pseudonymize). A copy: the cached result keeps its placeholders. */
export async function restoreChatResult<Result extends ChatResult>(context: Context<AppEnv>, result: Result): Promise<Result> {
  const session = context.get('pii');
  if (!session?.restores) return result;
  const choices: Result['choices'] = [];
  for (const choice of result.choices) {
    const message = { ...choice.message };
    if (typeof message.content === 'string') message.content = await session.restoreTextAsync(message.content);
    if (typeof message.refusal === 'string') message.refusal = session.restoreText(message.refusal);
    if (message.tool_calls) {
      message.tool_calls = message.tool_calls.map((call) => ({ ...call, function: { ...call.function, arguments: session.restoreJson(call.function.arguments) } }));
    }
    if (message.function_call) message.function_call = { ...message.function_call, arguments: session.restoreJson(message.function_call.arguments) };
    choices.push({ ...choice, message });
  }
  return { ...result, choices };
}

export async function restoreCompletionResult<Result extends CompletionResult>(context: Context<AppEnv>, result: Result): Promise<Result> {
  const session = context.get('pii');
  if (!session?.restores) return result;
  const choices: Result['choices'] = [];
  for (const choice of result.choices) choices.push({ ...choice, text: await session.restoreTextAsync(choice.text) });
  return { ...result, choices };
}

/**
 * A streamed answer with the originals back (pseudonymize): one restorer per choice for text
 * (and refusal) deltas, one per tool call for argument deltas; each holds back at most a
 * possible partial placeholder and is flushed before its choice's finish (or at the end).
 */
export async function* restoringParts(parts: AsyncIterable<StreamPart>, session: PiiSession): AsyncIterable<StreamPart> {
  const texts = new Map<number, StreamRestorer>();
  const refusals = new Map<number, StreamRestorer>();
  const functions = new Map<number, StreamRestorer>();
  const tools = new Map<number, Map<number, StreamRestorer>>();
  const get = (map: Map<number, StreamRestorer>, key: number, create: () => StreamRestorer): StreamRestorer => {
    let restorer = map.get(key);
    if (!restorer) map.set(key, (restorer = create()));
    return restorer;
  };
  function* flush(choice: number): Iterable<StreamPart> {
    const text = texts.get(choice)?.end();
    if (text) yield { type: 'text-delta', choice, text };
    const refusal = refusals.get(choice)?.end();
    if (refusal) yield { type: 'refusal-delta', choice, text: refusal };
    for (const [index, restorer] of tools.get(choice) ?? []) {
      const rest = restorer.end();
      if (rest) yield { type: 'tool-call-delta', choice, index, argumentsDelta: rest };
    }
    const call = functions.get(choice)?.end();
    if (call) yield { type: 'function-call-delta', choice, argumentsDelta: call };
    texts.delete(choice);
    refusals.delete(choice);
    tools.delete(choice);
    functions.delete(choice);
  }
  for await (const part of parts) {
    switch (part.type) {
      case 'text-delta': {
        const text = get(texts, part.choice, () => session.textRestorer()).push(part.text);
        if (text !== '' || part.logprobs) yield { ...part, text };
        break;
      }
      case 'refusal-delta': {
        const text = get(refusals, part.choice, () => session.textRestorer()).push(part.text);
        if (text !== '') yield { ...part, text };
        break;
      }
      case 'tool-call-delta': {
        let calls = tools.get(part.choice);
        if (!calls) tools.set(part.choice, (calls = new Map()));
        const argumentsDelta = get(calls, part.index, () => session.jsonRestorer()).push(part.argumentsDelta);
        if (argumentsDelta !== '' || part.id !== undefined || part.name !== undefined) yield { ...part, argumentsDelta };
        break;
      }
      case 'function-call-delta': {
        const argumentsDelta = get(functions, part.choice, () => session.jsonRestorer()).push(part.argumentsDelta);
        if (argumentsDelta !== '' || part.name !== undefined) yield { ...part, argumentsDelta };
        break;
      }
      case 'finish':
        yield* flush(part.choice);
        yield part;
        break;
      default:
        yield part;
    }
  }
  const open = new Set([...texts.keys(), ...refusals.keys(), ...tools.keys(), ...functions.keys()]);
  for (const choice of [...open].sort((a, b) => a - b)) yield* flush(choice);
}

/** The parts as the client should see them: restored when the request's policy is pseudonymize. */
export function clientParts(context: Context<AppEnv>, parts: AsyncIterable<StreamPart>): AsyncIterable<StreamPart> {
  const session = context.get('pii');
  return session?.restores ? restoringParts(parts, session) : parts;
}

// ---------------------------------------------------------------------------------------------
// The audit log's bodies.

/** Bodies are scanned up to this many characters past the audit cut, so a value on the cut is caught whole. */
const AUDIT_SCAN_SLACK = 512;

/**
 * A body as the audit log may hold it: every detected value replaced by a placeholder. JSON
 * bodies are redacted value by value (so JSON escapes cannot hide a value) and re-serialized;
 * other or cut text is redacted as text. `limit`: longer texts are cut first (with slack).
 * Bodies of any size: redacted in turns that share the event loop.
 */
export async function maskAuditBody(body: string | null | undefined, options: DetectOptions, pseudonymizer: Pseudonymizer, limit: number): Promise<string | null> {
  if (body === undefined || body === null || body === '') return body ?? null;
  if (body.length <= limit) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) {
      let changed = false;
      let visited = 0;
      const walk = async (value: unknown): Promise<unknown> => {
        // Many small values: a turn of the event loop now and then.
        if ((visited += 1) % 4096 === 0) await yieldToEventLoop();
        if (typeof value === 'string') {
          const redacted = (await pseudonymizer.redactAsync(value, options)).text;
          if (redacted !== value) changed = true;
          return redacted;
        }
        if (Array.isArray(value)) {
          const items: unknown[] = [];
          for (const item of value) items.push(await walk(item));
          return items;
        }
        if (value !== null && typeof value === 'object') {
          const entries: Array<[string, unknown]> = [];
          for (const [name, item] of Object.entries(value)) entries.push([name, await walk(item)]);
          return Object.fromEntries(entries);
        }
        return value;
      };
      const redacted = await walk(parsed);
      return changed ? JSON.stringify(redacted) : body;
    }
  }
  return (await pseudonymizer.redactAsync(body.length > limit + AUDIT_SCAN_SLACK ? body.slice(0, limit + AUDIT_SCAN_SLACK) : body, options)).text;
}
