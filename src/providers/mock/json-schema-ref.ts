/**
 * Small shared pieces of JSON Schema handling for the mock: the schema type, keyword
 * accessors that tolerate malformed schemas, deep equality, and `$ref` resolution within
 * one document (`#`, `#/$defs/…`, `#/definitions/…`, any `#/json/pointer`, `#anchor`).
 */

export type JsonSchema = boolean | SchemaObject;
export type SchemaObject = { [keyword: string]: unknown };

export function isSchemaObject(value: unknown): value is SchemaObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isJsonSchema(value: unknown): value is JsonSchema {
  return typeof value === 'boolean' || isSchemaObject(value);
}

export function numberKeyword(schema: SchemaObject, keyword: string): number | undefined {
  const value = schema[keyword];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function schemaKeyword(schema: SchemaObject, keyword: string): JsonSchema | undefined {
  const value = schema[keyword];
  return isJsonSchema(value) ? value : undefined;
}

export function schemaListKeyword(schema: SchemaObject, keyword: string): JsonSchema[] | undefined {
  const value = schema[keyword];
  return Array.isArray(value) ? value.filter(isJsonSchema) : undefined;
}

export function schemaMapKeyword(schema: SchemaObject, keyword: string): Record<string, JsonSchema> {
  const value = schema[keyword];
  const result: Record<string, JsonSchema> = {};
  if (!isSchemaObject(value)) return result;
  for (const [key, entry] of Object.entries(value)) if (isJsonSchema(entry)) result[key] = entry;
  return result;
}

/** One entry of a map keyword such as `properties`, without copying the map. */
export function schemaMapEntry(schema: SchemaObject, keyword: string, name: string): JsonSchema | undefined {
  const map = schema[keyword];
  if (!isSchemaObject(map) || !Object.hasOwn(map, name)) return undefined;
  const entry = map[name];
  return isJsonSchema(entry) ? entry : undefined;
}

export function stringListKeyword(schema: SchemaObject, keyword: string): string[] {
  const value = schema[keyword];
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : [];
}

/** The schema without the named keywords. */
export function withoutKeywords(schema: SchemaObject, ...keywords: string[]): SchemaObject {
  const copy: SchemaObject = { ...schema };
  for (const keyword of keywords) delete copy[keyword];
  return copy;
}

/** Keywords that describe a schema without constraining its instances. */
const annotationKeywords = new Set([
  '$schema', '$id', '$anchor', '$comment', '$defs', 'definitions', 'title', 'description',
  'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'strict', 'name',
]);

/** Whether the schema constrains anything (annotations alone do not). */
export function hasConstraints(schema: SchemaObject): boolean {
  return Object.keys(schema).some((keyword) => !annotationKeywords.has(keyword));
}

export function deepEqual(left: unknown, right: unknown): boolean {
  if (left === right) return true;
  if (typeof left !== 'object' || typeof right !== 'object' || left === null || right === null) return false;
  if (Array.isArray(left) !== Array.isArray(right)) return false;
  if (Array.isArray(left) && Array.isArray(right)) {
    return left.length === right.length && left.every((item, index) => deepEqual(item, right[index]));
  }
  const leftRecord = left as Record<string, unknown>;
  const rightRecord = right as Record<string, unknown>;
  const leftKeys = Object.keys(leftRecord);
  if (leftKeys.length !== Object.keys(rightRecord).length) return false;
  return leftKeys.every((key) => Object.hasOwn(rightRecord, key) && deepEqual(leftRecord[key], rightRecord[key]));
}

function unescapePointerSegment(segment: string): string {
  let decoded = segment;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    // not percent-encoded: keep as is
  }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

function findAnchor(node: unknown, anchor: string, depth = 0): JsonSchema | undefined {
  if (depth > 64 || typeof node !== 'object' || node === null) return undefined;
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findAnchor(item, anchor, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const record = node as SchemaObject;
  if (record.$anchor === anchor || record.$id === `#${anchor}`) return record;
  for (const value of Object.values(record)) {
    const found = findAnchor(value, anchor, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The schema a local `$ref` points to, or undefined when it cannot be resolved here. */
export function resolveReference(reference: string, root: JsonSchema): JsonSchema | undefined {
  const hashIndex = reference.indexOf('#');
  if (hashIndex === -1) return undefined; // a remote document: not available offline
  const fragment = reference.slice(hashIndex + 1);
  if (hashIndex > 0) {
    // `some-id#/…`: accept it only when it names the root document itself.
    const documentId = reference.slice(0, hashIndex);
    if (!isSchemaObject(root) || root.$id !== documentId) return undefined;
  }
  if (fragment === '') return root;
  if (!fragment.startsWith('/')) return findAnchor(root, fragment);
  let node: unknown = root;
  for (const segment of fragment.slice(1).split('/').map(unescapePointerSegment)) {
    if (Array.isArray(node)) node = node[Number(segment)];
    else if (isSchemaObject(node)) node = Object.hasOwn(node, segment) ? node[segment] : undefined;
    else return undefined;
  }
  return isJsonSchema(node) ? node : undefined;
}
