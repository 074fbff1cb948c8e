/**
 * The request body of `POST /v1/chat/completions`, as a zod schema. Known fields are
 * checked strictly; unknown fields are kept (`loose`) so that parameters newer than this
 * server still reach an OpenAI-compatible upstream.
 */
import { z } from 'zod';
import { samplingExtensions } from './sampling-extensions.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() }).loose();
const imagePart = z
  .object({
    type: z.literal('image_url'),
    image_url: z
      .object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() })
      .loose(),
  })
  .loose();
const audioPart = z
  .object({ type: z.literal('input_audio'), input_audio: z.object({ data: z.string(), format: z.string() }).loose() })
  .loose();
const filePart = z.object({ type: z.literal('file'), file: z.record(z.string(), z.unknown()) }).loose();
const refusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() }).loose();

export const userContentPart = z.discriminatedUnion('type', [textPart, imagePart, audioPart, filePart]);
export type UserContentPart = z.infer<typeof userContentPart>;

const textOnlyContent = z.union([z.string(), z.array(textPart)]);

const functionCall = z.object({ name: z.string(), arguments: z.string() }).loose();
export const toolCall = z
  .object({ id: z.string(), type: z.literal('function'), function: functionCall })
  .loose();
export type ToolCall = z.infer<typeof toolCall>;

const systemMessage = z
  .object({ role: z.literal('system'), content: textOnlyContent, name: z.string().optional() })
  .loose();
const developerMessage = z
  .object({ role: z.literal('developer'), content: textOnlyContent, name: z.string().optional() })
  .loose();
const userMessage = z
  .object({ role: z.literal('user'), content: z.union([z.string(), z.array(userContentPart)]), name: z.string().optional() })
  .loose();
const assistantMessage = z
  .object({
    role: z.literal('assistant'),
    content: z.union([z.string(), z.array(z.union([textPart, refusalPart])), z.null()]).optional(),
    name: z.string().optional(),
    refusal: z.string().nullable().optional(),
    tool_calls: z.array(toolCall).optional(),
    function_call: functionCall.nullable().optional(),
  })
  .loose();
const toolMessage = z
  .object({ role: z.literal('tool'), content: textOnlyContent, tool_call_id: z.string() })
  .loose();
const functionMessage = z
  .object({ role: z.literal('function'), content: z.string().nullable(), name: z.string() })
  .loose();

export const chatMessage = z.discriminatedUnion('role', [
  systemMessage,
  developerMessage,
  userMessage,
  assistantMessage,
  toolMessage,
  functionMessage,
]);
export type ChatMessage = z.infer<typeof chatMessage>;

const jsonSchemaObject = z.record(z.string(), z.unknown());

export const functionDefinition = z
  .object({
    name: z
      .string()
      .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 characters of a-z, A-Z, 0-9, underscores and dashes'),
    description: z.string().optional(),
    parameters: jsonSchemaObject.optional(),
    strict: z.boolean().nullable().optional(),
  })
  .loose();
export type FunctionDefinition = z.infer<typeof functionDefinition>;

export const tool = z.object({ type: z.literal('function'), function: functionDefinition }).loose();
export type Tool = z.infer<typeof tool>;

export const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }).loose() }).loose(),
]);
export type ToolChoice = z.infer<typeof toolChoice>;

export const responseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }).loose(),
  z.object({ type: z.literal('json_object') }).loose(),
  z
    .object({
      type: z.literal('json_schema'),
      json_schema: z
        .object({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 characters of a-z, A-Z, 0-9, underscores and dashes'),
          description: z.string().optional(),
          schema: jsonSchemaObject.optional(),
          strict: z.boolean().nullable().optional(),
        })
        .loose(),
    })
    .loose(),
]);
export type ResponseFormat = z.infer<typeof responseFormat>;

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullable();

export const chatCompletionRequest = z
  .object({
    model: z.string().min(1),
    messages: z.array(chatMessage).min(1),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    max_tokens: z.number().int().min(1).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).nullable().optional(),
    stop: stop.optional(),
    seed: z.number().int().nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    ...samplingExtensions,
    logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullable().optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    user: z.string().optional(),
    metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
    store: z.boolean().nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
    tools: z.array(tool).max(128).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().optional(),
    functions: z.array(functionDefinition).max(128).optional(),
    function_call: z
      .union([z.enum(['none', 'auto']), z.object({ name: z.string() }).loose()])
      .optional(),
    response_format: responseFormat.optional(),
  })
  .loose();

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;
