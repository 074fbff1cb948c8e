/**
 * A compact JSON Schema validator (drafts 7 to 2020-12, one document, local `$ref`s only),
 * used by the instance generator to verify its candidates: to pick the `anyOf`/`oneOf`
 * branch that really works, an `enum` value that fits the other keywords, and so on.
 * It answers yes or no, without error messages. Not checked: `unevaluatedProperties`,
 * `unevaluatedItems`, `$dynamicRef`, remote `$ref`s (treated as accepting anything), and
 * formats it does not know (accepted, as validators do).
 */
import {
  deepEqual,
  isSchemaObject,
  numberKeyword,
  resolveReference,
  schemaKeyword,
  schemaListKeyword,
  schemaMapKeyword,
  stringListKeyword,
  type JsonSchema,
  type SchemaObject,
} from './json-schema-ref.js';
import { compilePattern } from './regex-sample.js';
import { matchesFormat } from './string-formats.js';

const maximumDepth = 200;

export function jsonTypeOf(value: unknown): 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object' | undefined {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'boolean': return 'boolean';
    case 'number': return Number.isFinite(value) ? 'number' : undefined;
    case 'string': return 'string';
    case 'object': return 'object';
    default: return undefined;
  }
}

function matchesType(value: unknown, type: string): boolean {
  const actual = jsonTypeOf(value);
  if (type === 'integer') return actual === 'number' && Number.isInteger(value);
  return actual === type;
}

/** Length in Unicode code points, as JSON Schema counts it. */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _character of text) length++;
  return length;
}

class Checker {
  constructor(private readonly root: JsonSchema) {}

  check(value: unknown, schema: JsonSchema, depth: number): boolean {
    if (typeof schema === 'boolean') return schema;
    if (depth > maximumDepth) return false;
    const next = depth + 1;

    if (typeof schema.$ref === 'string') {
      const target = resolveReference(schema.$ref, this.root);
      if (target !== undefined && !this.check(value, target, next)) return false;
    }
    const allOf = schemaListKeyword(schema, 'allOf');
    if (allOf && !allOf.every((branch) => this.check(value, branch, next))) return false;
    const anyOf = schemaListKeyword(schema, 'anyOf');
    if (anyOf && !anyOf.some((branch) => this.check(value, branch, next))) return false;
    const oneOf = schemaListKeyword(schema, 'oneOf');
    if (oneOf && oneOf.filter((branch) => this.check(value, branch, next)).length !== 1) return false;
    const not = schemaKeyword(schema, 'not');
    if (not !== undefined && this.check(value, not, next)) return false;
    const condition = schemaKeyword(schema, 'if');
    if (condition !== undefined) {
      const branch = this.check(value, condition, next) ? schemaKeyword(schema, 'then') : schemaKeyword(schema, 'else');
      if (branch !== undefined && !this.check(value, branch, next)) return false;
    }

    if (!this.#checkType(value, schema)) return false;
    if (Array.isArray(schema.enum) && !schema.enum.some((option) => deepEqual(option, value))) return false;
    if (Object.hasOwn(schema, 'const') && !deepEqual(schema.const, value)) return false;

    if (typeof value === 'number') return this.#checkNumber(value, schema);
    if (typeof value === 'string') return this.#checkString(value, schema);
    if (Array.isArray(value)) return this.#checkArray(value, schema, next);
    if (isSchemaObject(value)) return this.#checkObject(value, schema, next);
    return true;
  }

  #checkType(value: unknown, schema: SchemaObject): boolean {
    const type = schema.type;
    const nullable = schema.nullable === true && value === null;
    if (typeof type === 'string') return nullable || matchesType(value, type);
    if (Array.isArray(type)) return nullable || type.some((entry) => typeof entry === 'string' && matchesType(value, entry));
    return true;
  }

  #checkNumber(value: number, schema: SchemaObject): boolean {
    const minimum = numberKeyword(schema, 'minimum');
    const maximum = numberKeyword(schema, 'maximum');
    const exclusiveMinimum = numberKeyword(schema, 'exclusiveMinimum');
    const exclusiveMaximum = numberKeyword(schema, 'exclusiveMaximum');
    const multipleOf = numberKeyword(schema, 'multipleOf');
    if (minimum !== undefined && (schema.exclusiveMinimum === true ? value <= minimum : value < minimum)) return false;
    if (maximum !== undefined && (schema.exclusiveMaximum === true ? value >= maximum : value > maximum)) return false;
    if (exclusiveMinimum !== undefined && value <= exclusiveMinimum) return false;
    if (exclusiveMaximum !== undefined && value >= exclusiveMaximum) return false;
    if (multipleOf !== undefined && multipleOf > 0 && !Number.isInteger(value / multipleOf)) return false;
    return true;
  }

  #checkString(value: string, schema: SchemaObject): boolean {
    const minimumLength = numberKeyword(schema, 'minLength');
    const maximumLength = numberKeyword(schema, 'maxLength');
    if (minimumLength !== undefined || maximumLength !== undefined) {
      const length = codePointLength(value);
      if (minimumLength !== undefined && length < minimumLength) return false;
      if (maximumLength !== undefined && length > maximumLength) return false;
    }
    if (typeof schema.pattern === 'string') {
      const pattern = compilePattern(schema.pattern);
      if (pattern && !pattern.test(value)) return false;
    }
    if (typeof schema.format === 'string' && !matchesFormat(schema.format, value)) return false;
    return true;
  }

  #checkArray(value: unknown[], schema: SchemaObject, depth: number): boolean {
    const minimumItems = numberKeyword(schema, 'minItems');
    const maximumItems = numberKeyword(schema, 'maxItems');
    if (minimumItems !== undefined && value.length < minimumItems) return false;
    if (maximumItems !== undefined && value.length > maximumItems) return false;

    const prefix = schemaListKeyword(schema, 'prefixItems') ?? schemaListKeyword(schema, 'items') ?? [];
    const rest = Array.isArray(schema.prefixItems) || !Array.isArray(schema.items)
      ? schemaKeyword(schema, 'items')
      : schemaKeyword(schema, 'additionalItems');
    for (const [index, item] of value.entries()) {
      const itemSchema = index < prefix.length ? prefix[index] : rest;
      if (itemSchema !== undefined && !this.check(item, itemSchema, depth)) return false;
    }

    const contains = schemaKeyword(schema, 'contains');
    if (contains !== undefined) {
      const matches = value.filter((item) => this.check(item, contains, depth)).length;
      const minimumContains = numberKeyword(schema, 'minContains') ?? 1;
      const maximumContains = numberKeyword(schema, 'maxContains');
      if (matches < minimumContains) return false;
      if (maximumContains !== undefined && matches > maximumContains) return false;
    }
    if (schema.uniqueItems === true) {
      for (let left = 0; left < value.length; left++) {
        for (let right = left + 1; right < value.length; right++) if (deepEqual(value[left], value[right])) return false;
      }
    }
    return true;
  }

  #checkObject(value: Record<string, unknown>, schema: SchemaObject, depth: number): boolean {
    const names = Object.keys(value);
    const minimumProperties = numberKeyword(schema, 'minProperties');
    const maximumProperties = numberKeyword(schema, 'maxProperties');
    if (minimumProperties !== undefined && names.length < minimumProperties) return false;
    if (maximumProperties !== undefined && names.length > maximumProperties) return false;
    for (const name of stringListKeyword(schema, 'required')) if (!Object.hasOwn(value, name)) return false;

    const properties = schemaMapKeyword(schema, 'properties');
    const patternProperties = Object.entries(schemaMapKeyword(schema, 'patternProperties'));
    const additional = schemaKeyword(schema, 'additionalProperties');
    const propertyNames = schemaKeyword(schema, 'propertyNames');
    for (const name of names) {
      const item = value[name];
      if (propertyNames !== undefined && !this.check(name, propertyNames, depth)) return false;
      let matched = false;
      const propertySchema = Object.hasOwn(properties, name) ? properties[name] : undefined;
      if (propertySchema !== undefined) {
        matched = true;
        if (!this.check(item, propertySchema, depth)) return false;
      }
      for (const [pattern, patternSchema] of patternProperties) {
        if (compilePattern(pattern)?.test(name)) {
          matched = true;
          if (!this.check(item, patternSchema, depth)) return false;
        }
      }
      if (!matched && additional !== undefined && !this.check(item, additional, depth)) return false;
    }

    const dependentRequired = { ...recordOf(schema.dependentRequired), ...recordOf(schema.dependencies) };
    for (const [name, dependency] of Object.entries(dependentRequired)) {
      if (!Object.hasOwn(value, name)) continue;
      if (Array.isArray(dependency)) {
        if (!dependency.every((required) => typeof required !== 'string' || Object.hasOwn(value, required))) return false;
      } else if (typeof dependency === 'boolean' || isSchemaObject(dependency)) {
        if (!this.check(value, dependency, depth)) return false;
      }
    }
    for (const [name, dependency] of Object.entries(schemaMapKeyword(schema, 'dependentSchemas'))) {
      if (Object.hasOwn(value, name) && !this.check(value, dependency, depth)) return false;
    }
    return true;
  }
}

function recordOf(value: unknown): Record<string, unknown> {
  return isSchemaObject(value) ? value : {};
}

/** Whether the value is valid against the schema; `$ref`s resolve against `root`. */
export function matchesSchema(value: unknown, schema: JsonSchema, root: JsonSchema = schema): boolean {
  return new Checker(root).check(value, schema, 0);
}
