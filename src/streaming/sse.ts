/** Server-sent events as OpenAI writes them: `data: <json>\n\n`, ending in `data: [DONE]`. */
import type { GatewayError } from '../errors/gateway-error.js';

export const SSE_DONE = 'data: [DONE]\n\n';

export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

/** A failure after the first byte: the SDKs turn a frame with a top-level `error` into an exception. */
export function sseError(error: GatewayError): string {
  return sseData(JSON.stringify(error.toBody()));
}

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};
