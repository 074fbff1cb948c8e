/**
 * A JSON schema mistake that no answer can satisfy: an object schema with
 * `additionalProperties: false` that requires a key it does not list in `properties`
 * (OpenAI refuses such a response format with 400; a model asked for it can only fail).
 * The walk is bounded in depth and size, so a deeply nested schema cannot exhaust the stack.
 */
const MAX_DEPTH = 64;
const MAX_NODES = 10_000;

export interface UnsatisfiableRequired {
  /** Where the object schema is, as keys from the root (e.g. ['properties', 'address']). */
  path: string[];
  key: string;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The first required key that cannot be present, or null. */
export function unsatisfiableRequired(schema: unknown): UnsatisfiableRequired | null {
  const pending: Array<{ node: unknown; path: string[] }> = [{ node: schema, path: [] }];
  let visited = 0;
  while (pending.length > 0 && visited < MAX_NODES) {
    const { node, path } = pending.pop()!;
    visited++;
    if (!isObject(node)) continue;
    const properties = isObject(node.properties) ? node.properties : {};
    if (node.additionalProperties === false && Array.isArray(node.required)) {
      const key = node.required.find((name): name is string => typeof name === 'string' && !Object.hasOwn(properties, name));
      if (key !== undefined) return { path, key };
    }
    if (path.length >= MAX_DEPTH) continue;
    for (const [name, child] of Object.entries(properties)) pending.push({ node: child, path: [...path, 'properties', name] });
    for (const keyword of ['$defs', 'definitions']) {
      const definitions = node[keyword];
      if (isObject(definitions)) for (const [name, child] of Object.entries(definitions)) pending.push({ node: child, path: [...path, keyword, name] });
    }
    if (isObject(node.items)) pending.push({ node: node.items, path: [...path, 'items'] });
    for (const [index, child] of (Array.isArray(node.allOf) ? node.allOf : []).entries()) pending.push({ node: child, path: [...path, 'allOf', String(index)] });
  }
  return null;
}
