/**
 * Translates a client's `response_format.json_schema.schema` into the schema dialect of
 * node-llama-cpp's grammar generator (GbnfJsonSchema), refusing with a 400 what it cannot
 * express. What the grammar cannot enforce but a validator can (minimum/maximum,
 * multipleOf, formats other than date/time/date-time) is accepted: the finished output is
 * validated against the original schema (see structured-output.ts).
 *
 * Notes on the generator: every declared property is always emitted (which is valid for
 * optional ones too); a schema without a type would become `null`, so "any value" is
 * spelled out; `anyOf` is rewritten to `oneOf` (the grammar is an alternative either way,
 * and validation uses the real keyword).
 */
import type { GbnfJsonSchema } from 'node-llama-cpp';
import { invalidRequest } from '../../errors/gateway-error.js';

export const SCHEMA_PARAM = 'response_format.json_schema.schema';

type Out = Record<string, unknown>;
type In = Record<string, unknown>;

const maximumDepth = 64;

/** Keywords that only describe: ignored by the grammar and the validator alike. */
const annotations = new Set([
  'title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', 'strict', '$anchor',
]);
/** Checked on the finished output only (the grammar cannot enforce them). */
const validatedOnly = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']);
const byType: Record<string, Set<string>> = {
  string: new Set(['minLength', 'maxLength', 'format']),
  number: validatedOnly,
  integer: validatedOnly,
  boolean: new Set(),
  null: new Set(),
  object: new Set(['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties']),
  array: new Set(['items', 'prefixItems', 'minItems', 'maxItems']),
};
const grammarFormats = new Set(['date-time', 'time', 'date']);
const anyValue: Out = { oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }] };

/** A keyword the grammar cannot express: turned into a 400 by `toGrammarSchema`. */
class SchemaProblem extends Error {
  constructor(message: string, readonly path: string) {
    super(message);
  }
}

function problem(message: string, path: string): never {
  throw new SchemaProblem(message, path);
}

/** Integer ranges this small are spelled out as an enum, so that the grammar enforces the bounds. */
export const ENUMERATED_INTEGER_RANGE = 256;

/** `{enum: [lo..hi]}` for an integer schema bounded on both sides within a small range (multipleOf honoured). */
function smallIntegerRange(schema: In): Out | undefined {
  const bound = (inclusive: unknown, exclusive: unknown, direction: 1 | -1): number | undefined => {
    const candidates: number[] = [];
    if (typeof inclusive === 'number' && Number.isFinite(inclusive)) candidates.push(direction === 1 ? Math.ceil(inclusive) : Math.floor(inclusive));
    if (typeof exclusive === 'number' && Number.isFinite(exclusive)) candidates.push(direction === 1 ? Math.floor(exclusive) + 1 : Math.ceil(exclusive) - 1);
    if (candidates.length === 0) return undefined;
    return direction === 1 ? Math.max(...candidates) : Math.min(...candidates);
  };
  const low = bound(schema.minimum, schema.exclusiveMinimum, 1);
  const high = bound(schema.maximum, schema.exclusiveMaximum, -1);
  if (low === undefined || high === undefined || high < low || high - low >= ENUMERATED_INTEGER_RANGE) return undefined;
  const step = typeof schema.multipleOf === 'number' && schema.multipleOf > 0 ? schema.multipleOf : undefined;
  const values: number[] = [];
  for (let value = low; value <= high; value++) if (step === undefined || Number.isInteger(value / step)) values.push(value);
  return values.length > 0 ? { enum: values } : undefined;
}

function isObject(value: unknown): value is In {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrimitive(value: unknown): value is string | number | boolean | null {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function count(schema: In, keyword: string, path: string): number | undefined {
  const value = schema[keyword];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) problem(`'${keyword}' must be a non-negative integer`, `${path}/${keyword}`);
  return value;
}

function inferType(schema: In): string | undefined {
  const has = (keywords: Set<string>) => Object.keys(schema).some((keyword) => keywords.has(keyword));
  if (has(byType.object!)) return 'object';
  if (has(byType.array!)) return 'array';
  if (has(byType.string!)) return 'string';
  if (has(validatedOnly)) return 'number';
  return undefined;
}

class Translator {
  readonly defs: Record<string, Out> = {};

  constructor(private readonly root: In) {}

  translate(schema: unknown, path: string, depth: number): Out {
    if (depth > maximumDepth) problem('the schema is nested too deeply', path);
    if (schema === true) return anyValue;
    if (schema === false) problem('a `false` schema accepts nothing', path);
    if (!isObject(schema)) problem('a schema must be an object or a boolean', path);
    const keys = Object.keys(schema).filter((keyword) => !annotations.has(keyword) && keyword !== '$defs' && keyword !== 'definitions');

    if (schema.nullable === true) {
      const { nullable: _nullable, ...rest } = schema;
      return { oneOf: [this.translate(rest, path, depth + 1), { type: 'null' }] };
    }
    if (typeof schema.$ref === 'string') {
      if (keys.length > 1) problem("'$ref' cannot be combined with other keywords", path);
      return { $ref: `#/$defs/${this.reference(schema.$ref, path)}` };
    }
    for (const combinator of ['anyOf', 'oneOf'] as const) {
      if (schema[combinator] === undefined) continue;
      const branches = schema[combinator];
      if (!Array.isArray(branches) || branches.length === 0) problem(`'${combinator}' must be a non-empty array of schemas`, `${path}/${combinator}`);
      if (keys.length > 1) problem(`'${combinator}' cannot be combined with other keywords here`, path);
      return { oneOf: branches.map((branch, index) => this.translate(branch, `${path}/${combinator}/${index}`, depth + 1)) };
    }
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) problem("'enum' must be a non-empty array", `${path}/enum`);
      if (!schema.enum.every(isPrimitive)) problem("'enum' values must be strings, numbers, booleans or null", `${path}/enum`);
      this.onlyValidated(keys, ['enum', 'type'], path);
      return { enum: schema.enum };
    }
    if (Object.hasOwn(schema, 'const')) {
      if (!isPrimitive(schema.const)) problem("'const' must be a string, number, boolean or null", `${path}/const`);
      this.onlyValidated(keys, ['const', 'type'], path);
      return { const: schema.const };
    }

    const type = schema.type ?? inferType(schema);
    if (type === undefined) {
      const unknown = keys.find((keyword) => keyword !== 'type');
      if (unknown !== undefined) problem(`the keyword '${unknown}' is not supported`, path);
      return anyValue;
    }
    if (Array.isArray(type)) {
      if (type.length === 0) problem("'type' must not be an empty list", `${path}/type`);
      return { oneOf: type.map((entry: unknown) => this.typed(schema, keys, entry, path, depth)) };
    }
    return this.typed(schema, keys, type, path, depth);
  }

  /** Refuses keywords beyond `allowed` and the validated-only ones. */
  private onlyValidated(keys: string[], allowed: string[], path: string): void {
    const extra = keys.find((keyword) => !allowed.includes(keyword) && !validatedOnly.has(keyword) && !Object.values(byType).some((set) => set.has(keyword)));
    if (extra !== undefined) problem(`the keyword '${extra}' is not supported`, path);
  }

  private typed(schema: In, keys: string[], type: unknown, path: string, depth: number): Out {
    if (typeof type !== 'string' || !(type in byType)) problem(`unknown type ${JSON.stringify(type)}`, `${path}/type`);
    const allowed = byType[type]!;
    for (const keyword of keys) {
      if (keyword === 'type' || allowed.has(keyword)) continue;
      if (Object.values(byType).some((set) => set.has(keyword))) continue; // another type's keyword: ignored, as JSON Schema does
      problem(`the keyword '${keyword}' is not supported`, path);
    }
    switch (type) {
      case 'string': {
        const minLength = count(schema, 'minLength', path);
        const maxLength = count(schema, 'maxLength', path);
        if (minLength !== undefined && maxLength !== undefined && maxLength < minLength) problem("'maxLength' is smaller than 'minLength'", path);
        if (schema.format !== undefined && typeof schema.format !== 'string') problem("'format' must be a string", `${path}/format`);
        if (typeof schema.format === 'string' && grammarFormats.has(schema.format)) {
          if (minLength !== undefined || maxLength !== undefined) problem(`'format: ${schema.format}' cannot be combined with length limits`, path);
          return { type: 'string', format: schema.format };
        }
        return { type: 'string', ...(minLength === undefined ? {} : { minLength }), ...(maxLength === undefined ? {} : { maxLength }) };
      }
      case 'object': {
        const properties = schema.properties ?? {};
        if (!isObject(properties)) problem("'properties' must be an object", `${path}/properties`);
        const required = schema.required ?? [];
        if (!Array.isArray(required) || !required.every((name) => typeof name === 'string')) problem("'required' must be a list of names", `${path}/required`);
        const missing = required.find((name) => !Object.hasOwn(properties, name));
        if (missing !== undefined) problem(`the required property '${missing}' is not declared in 'properties'`, `${path}/required`);
        const out: Out = {
          type: 'object',
          properties: Object.fromEntries(Object.entries(properties).map(([name, value]) => [name, this.translate(value, `${path}/properties/${name}`, depth + 1)])),
        };
        const additional = schema.additionalProperties;
        if (isObject(additional)) out.additionalProperties = this.translate(additional, `${path}/additionalProperties`, depth + 1);
        else if (additional !== undefined && typeof additional !== 'boolean') problem("'additionalProperties' must be a boolean or a schema", `${path}/additionalProperties`);
        const minProperties = count(schema, 'minProperties', path);
        const maxProperties = count(schema, 'maxProperties', path);
        if (maxProperties !== undefined && maxProperties < Object.keys(properties).length) {
          problem("'maxProperties' is smaller than the number of declared properties (all of which are generated)", path);
        }
        if (minProperties !== undefined && minProperties > Object.keys(properties).length) {
          if (additional === undefined || additional === false) problem("'minProperties' asks for more properties than may exist", path);
          out.minProperties = minProperties;
        }
        if (maxProperties !== undefined) out.maxProperties = maxProperties;
        return out;
      }
      case 'array': {
        const out: Out = { type: 'array' };
        let prefix = schema.prefixItems;
        let items = schema.items;
        if (Array.isArray(items)) {
          if (prefix !== undefined) problem("'items' must be a schema when 'prefixItems' is given", `${path}/items`);
          prefix = items;
          items = schema.additionalItems;
        }
        if (prefix !== undefined) {
          if (!Array.isArray(prefix)) problem("'prefixItems' must be a list of schemas", `${path}/prefixItems`);
          out.prefixItems = prefix.map((item, index) => this.translate(item, `${path}/prefixItems/${index}`, depth + 1));
        }
        if (items === false) {
          // no items beyond the prefix
          out.maxItems = Array.isArray(prefix) ? prefix.length : 0;
        } else if (items !== undefined) {
          out.items = this.translate(items, `${path}/items`, depth + 1);
        } else if (prefix === undefined) {
          out.items = anyValue;
        }
        const minItems = count(schema, 'minItems', path);
        const maxItems = count(schema, 'maxItems', path);
        if (minItems !== undefined && maxItems !== undefined && maxItems < minItems) problem("'maxItems' is smaller than 'minItems'", path);
        if (Array.isArray(prefix) && maxItems !== undefined && maxItems < prefix.length) problem("'maxItems' is smaller than the number of 'prefixItems'", path);
        if (minItems !== undefined) out.minItems = minItems;
        if (maxItems !== undefined) out.maxItems = Math.min(maxItems, (out.maxItems as number | undefined) ?? maxItems);
        return out;
      }
      case 'integer':
        return smallIntegerRange(schema) ?? { type };
      default:
        return { type };
    }
  }

  private reference(reference: string, path: string): string {
    const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(reference);
    if (!match) problem(`only local references to '#/$defs/<name>' or '#/definitions/<name>' are supported, not '${reference}'`, `${path}/$ref`);
    const name = match[2]!.replaceAll('~1', '/').replaceAll('~0', '~');
    const container = this.root[match[1]!];
    if (!isObject(container) || !Object.hasOwn(container, name)) problem(`'${reference}' points to no definition`, `${path}/$ref`);
    const key = `${match[1] === '$defs' ? 'd' : 'D'}_${name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    if (!Object.hasOwn(this.defs, key)) {
      this.defs[key] = {}; // placeholder: breaks cycles
      this.defs[key] = this.translate(container[name], `/${match[1]}/${name}`, 0);
    }
    return key;
  }
}

/**
 * The grammar generator's schema for `schema`, or a 400 naming what is not supported
 * (`param`: where the schema is in the request; `subject`: what it is, for the message).
 */
export function toGrammarSchema(schema: unknown, param = SCHEMA_PARAM, subject = 'response_format'): GbnfJsonSchema {
  try {
    if (!isObject(schema)) problem('the schema must be an object', '');
    const translator = new Translator(schema);
    let out = translator.translate(schema, '', 0);
    if (Object.keys(translator.defs).length > 0) {
      // The generator reads $defs from the schemas on the way down; the root has to carry them.
      out = out.type === 'object' || out.type === 'array' || out.oneOf !== undefined ? { ...out, $defs: translator.defs } : { oneOf: [out], $defs: translator.defs };
    }
    return out as GbnfJsonSchema;
  } catch (error) {
    if (!(error instanceof SchemaProblem)) throw error;
    throw invalidRequest(
      `Invalid schema for ${subject}: ${error.message} (at #${error.path}). The llama-cpp provider supports type, properties, required, additionalProperties, items, prefixItems, enum, const, anyOf/oneOf, $ref to $defs, nullable, string length and date/time formats, array and property counts; minimum/maximum/multipleOf and other formats are checked on the output.`,
      param,
    );
  }
}
