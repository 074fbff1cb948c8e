/** The errors of the guardrails: none of them quotes the text that was refused. */
import { GatewayError, invalidRequest } from '../errors/gateway-error.js';

export function contentPolicyViolation(message: string, param: string | null = null): GatewayError {
  return invalidRequest(message, param, 'content_policy_violation');
}

export function inputTooLarge(length: number, limit: number, param: string): GatewayError {
  return invalidRequest(
    `The input is ${length} characters long, more than this model's guardrail limit of ${limit} characters (max_input_chars). Shorten the input.`,
    param,
    'input_too_large',
  );
}

export function invalidModelOutput(message: string): GatewayError {
  return new GatewayError({ status: 502, type: 'server_error', code: 'invalid_model_output', message });
}

export function guardModelFailed(model: string, detail: string): GatewayError {
  return new GatewayError({
    status: 502,
    type: 'server_error',
    code: 'guard_model_failed',
    message: `The guard model '${model}' could not screen the request: ${detail}`,
  });
}
