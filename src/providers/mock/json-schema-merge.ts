/**
 * Merges two JSON Schemas into one that asks for both (the generator's way of handling
 * `allOf`). Bounds take the stricter value, types and enums intersect, object properties
 * merge property by property. Keywords that cannot be merged are handled in two ways:
 * `$ref`, `anyOf` and `oneOf` of the second schema move into the result's `allOf`, for the
 * generator to expand in turn; others (a second `pattern`, `format`, `contains`, …) keep
 * the first schema's value, and the caller verifies the generated value against the
 * original schemas. Returns false when the two plainly contradict each other.
 */
import { deepEqual, isJsonSchema, isSchemaObject, type JsonSchema, type SchemaObject } from './json-schema-ref.js';

const takeLargest = new Set(['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties', 'minContains']);
const takeSmallest = new Set(['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties', 'maxContains']);
/** Keywords the generator expands itself; a second occurrence goes into `allOf`. */
const deferred = new Set(['$ref', 'anyOf', 'oneOf']);

function typeList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((entry): entry is string => typeof entry === 'string');
  return undefined;
}

function intersectTypes(left: string[], right: string[]): string[] {
  const result = new Set<string>();
  for (const type of left) {
    if (right.includes(type)) result.add(type);
    else if (type === 'number' && right.includes('integer')) result.add('integer');
    else if (type === 'integer' && right.includes('number')) result.add('integer');
  }
  return [...result];
}

function greatestCommonDivisor(left: number, right: number): number {
  return right === 0 ? left : greatestCommonDivisor(right, left % right);
}

function mergeMultipleOf(left: number, right: number): number {
  if (Number.isInteger(left) && Number.isInteger(right)) return (left / greatestCommonDivisor(left, right)) * right;
  if (Number.isInteger(left / right)) return left;
  if (Number.isInteger(right / left)) return right;
  return left * right;
}

function both(left: unknown, right: unknown): JsonSchema {
  return { allOf: [left, right] };
}

function mergeSchemaMaps(left: unknown, right: unknown): Record<string, unknown> {
  const result: Record<string, unknown> = isSchemaObject(left) ? { ...left } : {};
  if (!isSchemaObject(right)) return result;
  for (const [name, schema] of Object.entries(right)) {
    result[name] = Object.hasOwn(result, name) ? both(result[name], schema) : schema;
  }
  return result;
}

function mergeSchemaLists(left: unknown[], right: unknown[]): unknown[] {
  const length = Math.max(left.length, right.length);
  return Array.from({ length }, (_, index) => {
    if (index >= left.length) return right[index];
    if (index >= right.length) return left[index];
    return both(left[index], right[index]);
  });
}

export function mergeSchemas(left: JsonSchema, right: JsonSchema): JsonSchema | false {
  if (left === false || right === false) return false;
  if (left === true) return right;
  if (right === true) return left;
  const merged: SchemaObject = { ...left };
  const pendingAllOf: unknown[] = Array.isArray(left.allOf) ? [...left.allOf] : [];
  if (Array.isArray(right.allOf)) pendingAllOf.push(...right.allOf);

  for (const [keyword, value] of Object.entries(right)) {
    if (keyword === 'allOf') continue;
    if (!Object.hasOwn(merged, keyword)) {
      merged[keyword] = value;
      continue;
    }
    const existing = merged[keyword];
    if (deepEqual(existing, value)) continue;

    if (deferred.has(keyword)) {
      pendingAllOf.push({ [keyword]: value });
    } else if (keyword === 'type') {
      const leftTypes = typeList(existing);
      const rightTypes = typeList(value);
      if (leftTypes && rightTypes) {
        const types = intersectTypes(leftTypes, rightTypes);
        if (types.length === 0) return false;
        merged.type = types.length === 1 ? types[0] : types;
      }
    } else if (keyword === 'enum') {
      if (Array.isArray(existing) && Array.isArray(value)) {
        const options = existing.filter((option) => value.some((other) => deepEqual(option, other)));
        if (options.length === 0) return false;
        merged.enum = options;
      }
    } else if (keyword === 'const') {
      return false; // two different constants
    } else if (takeLargest.has(keyword) && typeof existing === 'number' && typeof value === 'number') {
      merged[keyword] = Math.max(existing, value);
    } else if (takeSmallest.has(keyword) && typeof existing === 'number' && typeof value === 'number') {
      merged[keyword] = Math.min(existing, value);
    } else if (keyword === 'multipleOf' && typeof existing === 'number' && typeof value === 'number') {
      merged.multipleOf = mergeMultipleOf(existing, value);
    } else if (keyword === 'required' && Array.isArray(existing) && Array.isArray(value)) {
      merged.required = [...new Set([...existing, ...value])];
    } else if (keyword === 'uniqueItems') {
      merged.uniqueItems = existing === true || value === true;
    } else if (keyword === 'properties' || keyword === 'patternProperties' || keyword === '$defs' || keyword === 'definitions') {
      merged[keyword] = mergeSchemaMaps(existing, value);
    } else if (keyword === 'prefixItems' && Array.isArray(existing) && Array.isArray(value)) {
      merged.prefixItems = mergeSchemaLists(existing, value);
    } else if (keyword === 'items' && Array.isArray(existing) && Array.isArray(value)) {
      merged.items = mergeSchemaLists(existing, value);
    } else if (
      (keyword === 'items' || keyword === 'additionalItems' || keyword === 'additionalProperties' || keyword === 'propertyNames') &&
      isJsonSchema(existing) && isJsonSchema(value)
    ) {
      merged[keyword] = existing === false || value === false ? false : both(existing, value);
    } else if (keyword === 'not' && isJsonSchema(existing) && isJsonSchema(value)) {
      merged.not = { anyOf: [existing, value] };
    }
    // Anything else (pattern, format, contains, if/then/else, …): keep the first value;
    // the caller checks the result against both schemas.
  }
  if (pendingAllOf.length > 0) merged.allOf = pendingAllOf;
  else delete merged.allOf;
  return merged;
}
