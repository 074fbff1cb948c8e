/**
 * Turns a validated training example into the turns node-llama-cpp's chat wrappers render,
 * keeping track of what is trained on. Like the llama-cpp provider's chat-history.ts,
 * system → system, user → user, assistant → a model response whose tool calls (or legacy
 * function call) are function-call items carrying the results of the tool (function)
 * messages that answer them. Unlike it, an assistant message that follows the results of
 * the previous assistant message's calls continues that model response instead of opening
 * a new turn: that is how node-llama-cpp's LlamaChat (and the provider, see
 * generate.ts `withOpenTurn`) generates after a tool result, so training sees what serving
 * does. Each text and call group carries its assistant message's weight. Images cannot be
 * rendered for a text-only model: they throw. `name` fields are not rendered.
 */
import type { ChatModelFunctionCall } from 'node-llama-cpp';
import { contentText, isTrained, type AssistantMessage, type TrainingExample } from './example-types.js';

export type ModelElement =
  | { kind: 'text'; text: string; trained: boolean }
  | { kind: 'calls'; calls: ChatModelFunctionCall[]; trained: boolean };

export type TrainingTurn = { kind: 'system' | 'user'; text: string } | { kind: 'model'; elements: ModelElement[] };

/** The example cannot be rendered for the model (e.g. it has images). */
export class TokenizationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizationError';
  }
}

/** A call's arguments or result as the history carries them: parsed JSON, else the text. */
function parsedJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function callsOf(message: AssistantMessage, index: number, example: TrainingExample, toolResults: Map<string, string>): ChatModelFunctionCall[] {
  const calls: ChatModelFunctionCall[] = [];
  for (const call of message.tool_calls ?? []) {
    const result = toolResults.get(call.id);
    calls.push({ type: 'functionCall', name: call.function.name, params: parsedJson(call.function.arguments), result: result === undefined ? undefined : parsedJson(result) });
  }
  if (message.function_call) {
    const name = message.function_call.name;
    const answer = example.messages.slice(index + 1).find((later) => later.role === 'function' && later.name === name);
    const result = answer?.role === 'function' ? (answer.content ?? '') : undefined;
    calls.push({ type: 'functionCall', name, params: parsedJson(message.function_call.arguments), result: result === undefined ? undefined : parsedJson(result) });
  }
  if (calls[0]) calls[0].startsNewChunk = true;
  return calls;
}

export function trainingTurns(example: TrainingExample): TrainingTurn[] {
  const toolResults = new Map<string, string>();
  for (const message of example.messages) if (message.role === 'tool') toolResults.set(message.tool_call_id, contentText(message.content));
  const turns: TrainingTurn[] = [];
  /** Set while only the results of the last model turn's calls have come since it. */
  let continuable = false;
  let sawResult = false;
  example.messages.forEach((message, index) => {
    switch (message.role) {
      case 'system':
        turns.push({ kind: 'system', text: contentText(message.content) });
        continuable = false;
        return;
      case 'user': {
        if (Array.isArray(message.content) && message.content.some((part) => part.type === 'image_url')) {
          throw new TokenizationError(`messages[${index}] has an image, which a text-only model cannot take`);
        }
        turns.push({ kind: 'user', text: contentText(message.content) });
        continuable = false;
        return;
      }
      case 'tool':
      case 'function':
        sawResult = true;
        return;
      case 'assistant': {
        const trained = isTrained(message);
        const elements: ModelElement[] = [];
        const text = contentText(message.content) || (message.refusal ?? '');
        if (text) elements.push({ kind: 'text', text, trained });
        const calls = callsOf(message, index, example, toolResults);
        if (calls.length > 0) elements.push({ kind: 'calls', calls, trained });
        const last = turns.at(-1);
        if (continuable && sawResult && last?.kind === 'model') last.elements.push(...elements);
        else turns.push({ kind: 'model', elements });
        continuable = calls.length > 0;
        sawResult = false;
        return;
      }
    }
  });
  return turns;
}
