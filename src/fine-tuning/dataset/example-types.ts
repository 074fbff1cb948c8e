/**
 * The shape of one training example of an OpenAI chat fine-tuning file (supervised method),
 * as the validator accepts it: OpenAI's `FineTuneChatRequestInput` — `messages` (system,
 * user, assistant with an optional `weight` of 0 or 1, tool, legacy function), optional
 * `tools` + `parallel_tool_calls`, or legacy `functions`. Values of these types have passed
 * check-example.ts, so the trainer can rely on them without checking again.
 */

export interface TextPart {
  type: 'text';
  text: string;
}

export interface RefusalPart {
  type: 'refusal';
  refusal: string;
}

export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}

export interface FunctionCallValue {
  name: string;
  /** JSON text (checked to parse). */
  arguments: string;
}

export interface TrainingToolCall {
  id: string;
  type: 'function';
  function: FunctionCallValue;
}

export interface SystemMessage {
  role: 'system';
  content: string | TextPart[];
  name?: string;
}

export interface UserMessage {
  role: 'user';
  content: string | Array<TextPart | ImagePart>;
  name?: string;
}

export interface AssistantMessage {
  role: 'assistant';
  /** Absent or null only when the message calls tools/a function or carries a refusal. */
  content?: string | Array<TextPart | RefusalPart> | null;
  name?: string;
  refusal?: string | null;
  tool_calls?: TrainingToolCall[];
  function_call?: FunctionCallValue | null;
  /** 0: the message is context only, not trained on. Default 1. */
  weight?: 0 | 1;
}

export interface ToolMessage {
  role: 'tool';
  content: string | TextPart[];
  tool_call_id: string;
}

export interface FunctionMessage {
  role: 'function';
  content: string | null;
  name: string;
}

export type TrainingMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage;

export interface FunctionDefinition {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  strict?: boolean | null;
}

export interface TrainingTool {
  type: 'function';
  function: FunctionDefinition;
}

export interface TrainingExample {
  messages: TrainingMessage[];
  tools?: TrainingTool[];
  parallel_tool_calls?: boolean;
  functions?: FunctionDefinition[];
}

/** The text of a message's content (text and refusal parts joined; images skipped). */
export function contentText(content: string | ReadonlyArray<TextPart | RefusalPart | ImagePart> | null | undefined): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  let text = '';
  for (const part of content) {
    if (part.type === 'text') text += part.text;
    else if (part.type === 'refusal') text += part.refusal;
  }
  return text;
}

/** Whether the assistant message is trained on (OpenAI's `weight`, default 1). */
export function isTrained(message: AssistantMessage): boolean {
  return message.weight !== 0;
}
