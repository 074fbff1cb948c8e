/**
 * Checks of a chat request that a schema cannot express: references between fields and
 * messages, and what the resolved model can take. Each failure is a 400 naming `param`.
 */
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import { invalidRequest } from '../errors/gateway-error.js';
import type { ResolvedModel } from '../gateway/model-registry.js';
import { contentText } from '../tokens/token-counter.js';
import { unsatisfiableRequired } from '../openai/unsatisfiable-required.js';

export function checkChatRequest(request: ChatCompletionRequest, model: ResolvedModel): void {
  const toolNames = new Set((request.tools ?? []).map((tool) => tool.function.name));
  const choice = request.tool_choice;
  if (choice !== undefined && choice !== 'none' && toolNames.size === 0) {
    throw invalidRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice');
  }
  if (typeof choice === 'object' && !toolNames.has(choice.function.name)) {
    throw invalidRequest(`Invalid value for 'tool_choice': no tool named '${choice.function.name}' is in 'tools'.`, 'tool_choice');
  }
  const functionCall = request.function_call;
  if (functionCall !== undefined && functionCall !== 'none' && !request.functions?.length) {
    throw invalidRequest("Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.", 'function_call');
  }
  if (typeof functionCall === 'object' && !request.functions?.some((definition) => definition.name === functionCall.name)) {
    throw invalidRequest(`Invalid value for 'function_call': no function named '${functionCall.name}' is in 'functions'.`, 'function_call');
  }
  if (request.top_logprobs != null && request.logprobs !== true) {
    throw invalidRequest("Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.", 'top_logprobs');
  }
  if (request.stream_options != null && request.stream !== true) {
    throw invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  }
  if (request.logprobs === true && !(model.provider.capabilities.logprobs && modelAllowsLogprobs(model))) {
    throw invalidRequest(`The model '${model.config.name}' does not return logprobs.`, 'logprobs', 'logprobs_not_supported');
  }
  const format = request.response_format;
  if (format?.type === 'json_object' && !request.messages.some((message) => /json/i.test(contentText((message as { content?: unknown }).content)))) {
    throw invalidRequest("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages');
  }
  if (format?.type === 'json_schema' && format.json_schema.strict === true && !format.json_schema.schema) {
    throw invalidRequest("Invalid 'response_format.json_schema.schema': a strict JSON schema needs a 'schema'.", 'response_format.json_schema.schema');
  }
  const impossible = format?.type === 'json_schema' ? unsatisfiableRequired(format.json_schema.schema) : null;
  if (impossible !== null && format?.type === 'json_schema') {
    throw invalidRequest(
      `Invalid schema for response_format '${format.json_schema.name}': in context=(${impossible.path.map((part) => `'${part}'`).join(', ')}), the required key '${impossible.key}' is not in 'properties' and 'additionalProperties' is false, so no answer can match.`,
      'response_format.json_schema.schema',
      'invalid_json_schema',
    );
  }
  checkMessages(request, model);
}

function modelAllowsLogprobs(model: ResolvedModel): boolean {
  return !('logprobs' in model.config) || model.config.logprobs !== false;
}

function checkMessages(request: ChatCompletionRequest, model: ResolvedModel): void {
  const pendingToolCalls = new Set<string>();
  request.messages.forEach((message, index) => {
    if (message.role === 'assistant') {
      pendingToolCalls.clear();
      for (const call of message.tool_calls ?? []) pendingToolCalls.add(call.id);
      const hasContent = message.content !== undefined && message.content !== null;
      if (!hasContent && !message.tool_calls?.length && !message.function_call && !message.refusal) {
        throw invalidRequest(
          `Invalid value for 'messages[${index}].content': an assistant message needs 'content', 'tool_calls' or 'function_call'.`,
          `messages[${index}].content`,
        );
      }
      return;
    }
    if (message.role === 'tool') {
      if (!pendingToolCalls.has(message.tool_call_id)) {
        throw invalidRequest(
          `Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls' (no call with id '${message.tool_call_id}').`,
          `messages[${index}].tool_call_id`,
        );
      }
      return;
    }
    if (message.role === 'user' && Array.isArray(message.content) && !model.config.vision) {
      const imageIndex = message.content.findIndex((part) => part.type === 'image_url');
      if (imageIndex >= 0) {
        throw invalidRequest(
          `Invalid content type. image_url is only supported by models with vision: the model '${model.config.name}' does not accept images.`,
          `messages[${index}].content[${imageIndex}].type`,
          'image_input_not_supported',
        );
      }
    }
  });
}
