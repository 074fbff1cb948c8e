/**
 * A deterministic, valid instance of a JSON Schema: what the mock puts in tool-call
 * arguments and `json_schema` structured outputs.
 *
 * The generator walks the schema: `$ref` (local, recursion bounded), `anyOf`/`oneOf` (the
 * first branch whose value really validates), `allOf` (merged), `if`/`then`/`else`,
 * `enum`, `const`, then the type (`type` or inferred from the keywords present; for a
 * list of types the first that works, `null` last). Objects get every declared property
 * (strict mode requires them all) plus whatever `required`, `minProperties` and
 * `dependentRequired` ask for; arrays get one item (or `minItems`, or the tuple's length);
 * strings are the given text fitted to `minLength`/`maxLength`, a sample of their `format`,
 * or a string built from their `pattern`; numbers are 1 when allowed, else the nearest
 * valid value. Every candidate is checked with a small validator; when no candidate passes,
 * a second, lenient pass returns its best effort (see docs/providers/mock.md for limits).
 */
import { codePointLength, matchesSchema } from './json-schema-check.js';
import { mergeSchemas } from './json-schema-merge.js';
import {
  hasConstraints,
  isJsonSchema,
  numberKeyword,
  resolveReference,
  schemaKeyword,
  isSchemaObject,
  schemaListKeyword,
  schemaMapEntry,
  schemaMapKeyword,
  stringListKeyword,
  withoutKeywords,
  type JsonSchema,
  type SchemaObject,
} from './json-schema-ref.js';
import { numberSample } from './number-sample.js';
import { compilePattern, regexSample } from './regex-sample.js';
import { formatSample } from './string-formats.js';

export interface InstanceOptions {
  /** Text used for plain strings (default "mock"). */
  text?: string;
}

type Outcome = { ok: true; value: unknown } | { ok: false };
const failed: Outcome = { ok: false };
const success = (value: unknown): Outcome => ({ ok: true, value });

interface Position {
  /** `$ref`s being expanded on the way here, to bound recursion. */
  references: string[];
  /** Nesting of objects and arrays. */
  depth: number;
  /** Asks for the variant-th value, so that items of a `uniqueItems` array differ. */
  variant: number;
}

/** How often one `$ref` may be entered on a path: a recursive schema nests twice. */
const maximumReferenceEntries = 2;
const maximumDepth = 100;
/** A bound on the work for one instance, against schemas that explode combinatorially. */
const maximumSteps = 20_000;
/** Extra quantifier repetitions tried when building a string from a pattern. */
const patternAttempts = 12;
/** Variants tried when a value is rejected (e.g. it matches two `oneOf` branches, or `not`). */
const alternativeVariants = 3;

const objectKeywords = ['properties', 'required', 'additionalProperties', 'patternProperties', 'minProperties', 'maxProperties', 'propertyNames', 'dependentRequired'];
const arrayKeywords = ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'contains', 'uniqueItems'];
const stringKeywords = ['minLength', 'maxLength', 'pattern', 'format'];
const numberKeywords = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'];
const allTypes = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];

/** Types to try for a schema: its declared types (null last), else those its keywords suggest, then the rest. */
function candidateTypes(schema: SchemaObject): string[] {
  const declared = typeof schema.type === 'string' ? [schema.type] : Array.isArray(schema.type) ? schema.type.filter((type): type is string => typeof type === 'string') : undefined;
  let types: string[];
  if (declared) {
    types = [...declared.filter((type) => type !== 'null'), ...declared.filter((type) => type === 'null')];
    if (schema.nullable === true && !types.includes('null')) types.push('null');
    return types;
  }
  const has = (keywords: string[]) => keywords.some((keyword) => Object.hasOwn(schema, keyword));
  const inferred: string[] = [];
  if (has(objectKeywords)) inferred.push('object');
  if (has(arrayKeywords)) inferred.push('array');
  if (has(stringKeywords)) inferred.push('string');
  if (has(numberKeywords)) inferred.push('number');
  return [...inferred, ...allTypes.filter((type) => !inferred.includes(type))];
}

/** The text repeated (joined by `separator`) up to `minimum` code points and cut to `maximum`. */
function fitLength(text: string, minimum: number, maximum: number, separator: string): string {
  const [unit, joiner] = text === '' ? ['x', ''] : [text, separator];
  const pieces = [text];
  let length = codePointLength(text);
  while (length < minimum) {
    const piece = length === 0 ? unit : joiner + unit;
    pieces.push(piece);
    length += codePointLength(piece);
  }
  const result = pieces.join('');
  return length > maximum ? [...result].slice(0, maximum).join('') : result;
}

class InstanceGenerator {
  #steps = 0;

  constructor(
    private readonly root: JsonSchema,
    private readonly text: string,
    private readonly lenient: boolean,
  ) {}

  generate(schema: JsonSchema, position: Position): Outcome {
    if (++this.#steps > maximumSteps) return failed;
    if (schema === true) return success(this.#plainText(position.variant));
    if (schema === false || position.depth > maximumDepth) return failed;

    if (typeof schema.$ref === 'string') return this.#reference(schema, schema.$ref, position);
    if (Array.isArray(schema.anyOf)) return this.#alternatives(schema, 'anyOf', position);
    if (Array.isArray(schema.oneOf)) return this.#alternatives(schema, 'oneOf', position);
    if (Array.isArray(schema.allOf)) return this.#conjunction(schema, position);
    if (isJsonSchema(schema.if)) return this.#conditional(schema, position);
    if (Array.isArray(schema.enum)) return this.#enumeration(schema, schema.enum, position);
    if (Object.hasOwn(schema, 'const')) return this.#accept(schema.const, schema);
    return this.#byType(schema, position);
  }

  #valid(value: unknown, schema: JsonSchema): boolean {
    return matchesSchema(value, schema, this.root);
  }

  /** The value if it validates; in the lenient pass, the value anyway. */
  #accept(value: unknown, schema: JsonSchema): Outcome {
    return this.lenient || this.#valid(value, schema) ? success(value) : failed;
  }

  /** Whether some `$ref` has been entered twice on the way here: build the smallest valid value. */
  #recursing(position: Position): boolean {
    return new Set(position.references).size < position.references.length;
  }

  #plainText(variant: number): string {
    return variant === 0 ? this.text : `${this.text} ${variant + 1}`;
  }

  #reference(schema: SchemaObject, reference: string, position: Position): Outcome {
    const entries = position.references.filter((entry) => entry === reference).length;
    if (entries >= maximumReferenceEntries) return failed;
    const target = resolveReference(reference, this.root) ?? true; // unresolvable: anything
    const rest = withoutKeywords(schema, '$ref');
    const expanded: JsonSchema = hasConstraints(rest) ? { allOf: [target, rest] } : target;
    return this.generate(expanded, { ...position, references: [...position.references, reference] });
  }

  #alternatives(schema: SchemaObject, keyword: 'anyOf' | 'oneOf', position: Position): Outcome {
    const rest = withoutKeywords(schema, keyword);
    let fallback: Outcome = failed;
    // A value of a `oneOf` branch may also match another branch: then try other variants.
    for (let offset = 0; offset < alternativeVariants; offset++) {
      for (const branch of schemaListKeyword(schema, keyword) ?? []) {
        const combined = mergeSchemas(rest, branch);
        if (combined === false) continue;
        const outcome = this.generate(combined, { ...position, variant: position.variant + offset });
        if (!outcome.ok) continue;
        if (this.#valid(outcome.value, schema)) return outcome;
        if (!fallback.ok) fallback = outcome;
      }
      if (keyword === 'anyOf') break;
    }
    return this.lenient ? fallback : failed;
  }

  #conjunction(schema: SchemaObject, position: Position): Outcome {
    let merged: JsonSchema | false = withoutKeywords(schema, 'allOf');
    for (const part of schemaListKeyword(schema, 'allOf') ?? []) {
      merged = mergeSchemas(merged, part);
      if (merged === false) return failed;
    }
    const outcome = this.generate(merged, position);
    return outcome.ok ? this.#accept(outcome.value, schema) : failed;
  }

  #conditional(schema: SchemaObject, position: Position): Outcome {
    const base = withoutKeywords(schema, 'if', 'then', 'else');
    const condition = schemaKeyword(schema, 'if') ?? true;
    const whenTrue = mergeSchemas(base, { allOf: [condition, schemaKeyword(schema, 'then') ?? true] });
    const whenFalse = mergeSchemas(base, schemaKeyword(schema, 'else') ?? true);
    let fallback: Outcome = failed;
    for (const attempt of [whenTrue, whenFalse]) {
      if (attempt === false) continue;
      const outcome = this.generate(attempt, position);
      if (!outcome.ok) continue;
      if (this.#valid(outcome.value, schema)) return outcome;
      if (!fallback.ok) fallback = outcome;
    }
    return this.lenient ? fallback : failed;
  }

  #enumeration(schema: SchemaObject, options: unknown[], position: Position): Outcome {
    const rest = withoutKeywords(schema, 'enum');
    const fitting = options.filter((option) => this.#valid(option, rest));
    if (fitting.length > 0) return success(fitting[position.variant % fitting.length]);
    return this.lenient && options.length > 0 ? success(options[0]) : failed;
  }

  #byType(schema: SchemaObject, position: Position): Outcome {
    let fallback: Outcome = failed;
    for (const type of candidateTypes(schema)) {
      // A scalar that is rejected (by `not`, say) may pass as another variant.
      const variants = type === 'object' || type === 'array' ? 1 : alternativeVariants;
      for (let offset = 0; offset < variants; offset++) {
        const outcome = this.#ofType(type, schema, { ...position, variant: position.variant + offset });
        if (!outcome.ok) continue;
        if (this.#valid(outcome.value, schema)) return outcome;
        if (!fallback.ok) fallback = outcome;
      }
    }
    return this.lenient ? fallback : failed;
  }

  #ofType(type: string, schema: SchemaObject, position: Position): Outcome {
    switch (type) {
      case 'null':
        return success(null);
      case 'boolean':
        return success(position.variant % 2 === 0);
      case 'integer':
      case 'number': {
        const value = numberSample(schema, type === 'integer', position.variant);
        return value === undefined ? failed : success(value);
      }
      case 'string':
        return this.#string(schema, position.variant);
      case 'array':
        return this.#array(schema, position);
      case 'object':
        return this.#object(schema, position);
      default:
        return failed;
    }
  }

  #string(schema: SchemaObject, variant: number): Outcome {
    const minimum = numberKeyword(schema, 'minLength') ?? 0;
    const maximum = numberKeyword(schema, 'maxLength') ?? Infinity;
    const format = typeof schema.format === 'string' ? schema.format : undefined;
    const pattern = typeof schema.pattern === 'string' ? schema.pattern : undefined;
    const candidates: string[] = [];
    const sample = format === undefined ? undefined : formatSample(format, variant);
    if (sample !== undefined) candidates.push(sample);
    if (pattern !== undefined && compilePattern(pattern) !== null) {
      candidates.push(fitLength(this.#plainText(variant), minimum, maximum, ' '));
      for (let extra = 0; extra <= patternAttempts; extra++) {
        const built = regexSample(pattern, extra + variant);
        if (built === undefined) break;
        candidates.push(built, fitLength(built, minimum, maximum, ''));
      }
    } else candidates.push(fitLength(this.#plainText(variant), minimum, maximum, ' '));

    const valid = candidates.find((candidate) => this.#valid(candidate, schema));
    if (valid !== undefined) return success(valid);
    return this.lenient ? success(candidates.at(-1) ?? '') : failed;
  }

  #array(schema: SchemaObject, position: Position): Outcome {
    const prefix = schemaListKeyword(schema, 'prefixItems') ?? schemaListKeyword(schema, 'items') ?? [];
    const rest = Array.isArray(schema.prefixItems) || !Array.isArray(schema.items)
      ? schemaKeyword(schema, 'items')
      : schemaKeyword(schema, 'additionalItems');
    const minimum = numberKeyword(schema, 'minItems') ?? 0;
    const maximum = numberKeyword(schema, 'maxItems') ?? Infinity;
    const contains = schemaKeyword(schema, 'contains');
    const containsCount = contains === undefined ? 0 : (numberKeyword(schema, 'minContains') ?? 1);
    const unique = schema.uniqueItems === true;

    let count = this.#recursing(position) ? Math.max(minimum, containsCount) : Math.max(minimum, prefix.length, containsCount, 1);
    count = Math.min(count, maximum);
    if (rest === false) count = Math.min(count, prefix.length);

    const items: unknown[] = [];
    for (let index = 0; index < count; index++) {
      let itemSchema: JsonSchema = index < prefix.length ? (prefix[index] as JsonSchema) : (rest ?? true);
      if (contains !== undefined && index < containsCount) itemSchema = { allOf: [itemSchema, contains] };
      const variant = unique ? position.variant + index : position.variant;
      const outcome = this.generate(itemSchema, { ...position, depth: position.depth + 1, variant });
      if (!outcome.ok) {
        if (index >= minimum && index >= containsCount) break;
        return failed;
      }
      items.push(outcome.value);
    }
    return success(items);
  }

  /** The schema of one property: its `properties` entry and every matching `patternProperties` entry, else `additionalProperties`. */
  #propertySchema(schema: SchemaObject, name: string): JsonSchema | undefined {
    const parts: JsonSchema[] = [];
    const declared = schemaMapEntry(schema, 'properties', name);
    if (declared !== undefined) parts.push(declared);
    if (isSchemaObject(schema.patternProperties)) {
      for (const [pattern, patternSchema] of Object.entries(schemaMapKeyword(schema, 'patternProperties'))) {
        if (compilePattern(pattern)?.test(name)) parts.push(patternSchema);
      }
    }
    if (parts.length === 0) {
      const additional = schemaKeyword(schema, 'additionalProperties');
      return additional === false ? undefined : (additional ?? true);
    }
    return parts.length === 1 ? parts[0] : { allOf: parts };
  }

  /** Names for properties beyond the declared ones (for `minProperties`). */
  *#extraNames(schema: SchemaObject): Generator<string> {
    if (schemaKeyword(schema, 'additionalProperties') !== false) {
      for (let index = 1; ; index++) yield `property${index}`;
    }
    for (const pattern of Object.keys(schemaMapKeyword(schema, 'patternProperties'))) {
      for (let extra = 0; extra <= patternAttempts; extra++) {
        const name = regexSample(pattern, extra);
        if (name !== undefined && compilePattern(pattern)?.test(name)) yield name;
      }
    }
  }

  #object(schema: SchemaObject, position: Position): Outcome {
    const declared = Object.keys(schemaMapKeyword(schema, 'properties'));
    const declaredSet = new Set(declared);
    const required = new Set(stringListKeyword(schema, 'required'));
    const maximum = numberKeyword(schema, 'maxProperties') ?? Infinity;
    const minimum = numberKeyword(schema, 'minProperties') ?? 0;
    const child: Position = { ...position, depth: position.depth + 1 };

    // Every required property; every other declared one too, unless recursing or over maxProperties.
    const wanted = new Set(required);
    if (!this.#recursing(position)) {
      for (const name of declared) if (wanted.size < maximum && !wanted.has(name)) wanted.add(name);
    }
    const dependencies = { ...recordOf(schema.dependentRequired), ...recordOf(schema.dependencies) };
    for (let grew = true; grew; ) {
      grew = false;
      for (const [name, needed] of Object.entries(dependencies)) {
        if (!wanted.has(name) || !Array.isArray(needed)) continue;
        for (const other of needed) {
          if (typeof other !== 'string' || wanted.has(other)) continue;
          wanted.add(other);
          grew = true;
        }
      }
    }

    const result: Record<string, unknown> = {};
    const order = [...declared.filter((name) => wanted.has(name)), ...[...wanted].filter((name) => !declaredSet.has(name))];
    for (const name of order) {
      const propertySchema = this.#propertySchema(schema, name);
      const outcome = propertySchema === undefined ? failed : this.generate(propertySchema, child);
      if (outcome.ok) result[name] = outcome.value;
      else if (required.has(name)) return failed;
    }

    if (Object.keys(result).length < minimum) {
      let attempts = 0;
      for (const name of this.#extraNames(schema)) {
        if (Object.keys(result).length >= minimum || ++attempts > minimum + patternAttempts) break;
        if (Object.hasOwn(result, name)) continue;
        const propertySchema = this.#propertySchema(schema, name);
        const outcome = propertySchema === undefined ? failed : this.generate(propertySchema, child);
        if (outcome.ok) result[name] = outcome.value;
      }
    }
    return success(result);
  }
}

function recordOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * A deterministic instance of the schema. It validates whenever the schema is within what
 * the generator understands; otherwise it is a best effort (never an exception). A schema
 * that is not an object or boolean counts as `{}`.
 */
export function jsonSchemaInstance(schema: unknown, options: InstanceOptions = {}): unknown {
  const root: JsonSchema = isJsonSchema(schema) ? schema : true;
  const text = options.text ?? 'mock';
  for (const lenient of [false, true]) {
    const outcome = new InstanceGenerator(root, text, lenient).generate(root, { references: [], depth: 0, variant: 0 });
    if (outcome.ok) return outcome.value;
  }
  return null;
}
