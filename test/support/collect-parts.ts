/** Test helper: every part of a provider's stream, in order. */
import type { StreamPart } from '../../src/providers/spec.js';

export async function collectParts(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const collected: StreamPart[] = [];
  for await (const part of parts) collected.push(part);
  return collected;
}
