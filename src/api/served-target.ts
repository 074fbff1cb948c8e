/**
 * Which target of a router model served a request: named in the `x-chatgate-target`
 * response header and in the audit record's `provider` field (docs/routing.md).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { setResponseHeader } from '../middleware/response-headers.js';
import type { StreamPart } from '../providers/spec.js';

export const TARGET_HEADER = 'x-chatgate-target';

export function noteTarget(context: Context<AppEnv>, target: string | undefined): void {
  if (target === undefined) return;
  setResponseHeader(context, TARGET_HEADER, target);
  context.set('providerName', target);
}

/**
 * The parts, noting the target named by a `metadata` part. The stream's response headers are
 * written after its first part, so `headers()` (the object they are built from) gets it too.
 */
export async function* notingTarget(
  context: Context<AppEnv>,
  parts: AsyncIterable<StreamPart>,
  headers: () => Record<string, string>,
): AsyncIterable<StreamPart> {
  for await (const part of parts) {
    if (part.type === 'metadata' && part.target !== undefined) {
      noteTarget(context, part.target);
      headers()[TARGET_HEADER] = part.target;
    }
    yield part;
  }
}
