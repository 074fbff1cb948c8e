/** Reads the optional JSON object body of the admin actions. */
import type { Context } from 'hono';
import { invalidRequest } from '../errors/gateway-error.js';
import { readBodyText } from '../http/read-body.js';

/** The JSON body, or `{}` when the body is empty (for actions whose fields are all optional). */
export async function readOptionalJsonObject(context: Context, maxBytes: number): Promise<Record<string, unknown>> {
  const text = await readBodyText(context, maxBytes);
  if (text.trim().length === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidRequest('We could not parse the JSON body of your request. The body must be a JSON object.');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}
