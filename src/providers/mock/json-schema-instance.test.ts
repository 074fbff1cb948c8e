import { Ajv, type AnySchema } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { jsonSchemaInstance } from './json-schema-instance.js';

/** Format checks for ajv (ajv-formats is not a dependency), written independently of the mock's. */
const formats: Record<string, RegExp> = {
  'date-time': /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[tT ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([zZ]|[+-]\d\d:?\d\d)$/,
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([zZ]|[+-]\d\d:?\d\d)?$/,
  email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  uri: /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s]*$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  ipv4: /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  ipv6: /^[0-9a-fA-F:]+$/,
  hostname: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/,
  duration: /^P(\d+[YMWD])+(T(\d+[HMS])+)?$|^PT(\d+[HMS])+$/,
};

function withFormats<T extends Ajv | Ajv2020>(ajv: T): T {
  for (const [name, pattern] of Object.entries(formats)) ajv.addFormat(name, pattern);
  return ajv;
}

const draft7 = withFormats(new Ajv({ strict: false, allErrors: true }));
const draft2020 = withFormats(new Ajv2020({ strict: false, allErrors: true }));

function expectValid(schema: Record<string, unknown> | boolean, options: { draft?: '7' | '2020'; text?: string } = {}): unknown {
  const instance = jsonSchemaInstance(schema, { text: options.text ?? 'Paris in spring' });
  const ajv = options.draft === '7' ? draft7 : draft2020;
  const validate = ajv.compile(schema as AnySchema);
  const valid = validate(instance);
  expect(valid, `${JSON.stringify(instance)} against ${JSON.stringify(schema)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  return instance;
}

describe('jsonSchemaInstance: primitive types', () => {
  it.each([
    [{ type: 'string' }, 'Paris in spring'],
    [{ type: 'number' }, 1],
    [{ type: 'integer' }, 1],
    [{ type: 'boolean' }, true],
    [{ type: 'null' }, null],
    [{ type: ['string', 'null'] }, 'Paris in spring'],
    [{ type: ['null', 'integer'] }, 1],
    [{ type: 'string', nullable: true }, 'Paris in spring'],
    [{}, 'Paris in spring'],
    [true, 'Paris in spring'],
  ])('%j → %j', (schema, expected) => {
    expect(expectValid(schema)).toEqual(expected);
  });

  it('uses "mock" for strings when no text is given', () => {
    expect(jsonSchemaInstance({ type: 'string' })).toBe('mock');
  });
});

describe('jsonSchemaInstance: strings', () => {
  it('cuts the text to maxLength and repeats it up to minLength (counting code points)', () => {
    expect(expectValid({ type: 'string', maxLength: 5 })).toBe('Paris');
    expect(expectValid({ type: 'string', minLength: 20 })).toBe('Paris in spring Paris in spring');
    expect(expectValid({ type: 'string', minLength: 20, maxLength: 20 })).toBe('Paris in spring Pari');
    expect(expectValid({ type: 'string', minLength: 3 }, { text: '' })).toBe('xxx');
    expect(expectValid({ type: 'string', maxLength: 3 }, { text: '🙂🙂🙂🙂' })).toBe('🙂🙂🙂');
    expectValid({ type: 'string', minLength: 0, maxLength: 0 });
  });

  it.each(['date-time', 'date', 'time', 'email', 'uri', 'uuid', 'ipv4', 'ipv6', 'hostname', 'duration'])('format %s', (format) => {
    const instance = expectValid({ type: 'string', format });
    expect(typeof instance).toBe('string');
  });

  it.each([
    '^[a-z]+$',
    '^\\d{3}-\\d{2}$',
    '^(foo|bar)_[0-9]{2,4}$',
    '^[^@\\s]+@[^@\\s]+$',
    '^#[0-9a-fA-F]{6}$',
    '^[A-Z]{2}\\d{2}[A-Z0-9]{4}\\d{7}([A-Z0-9]?){0,16}$',
    'abc',
    '^(?:[A-Z][a-z]+ ?)+$',
    '^(?<quote>["\']).+\\k<quote>$',
    '^\\+?[1-9]\\d{1,14}$',
    '^[\\p{Lu}][\\p{Ll}]+$',
    '^\\S+\\s\\S+$',
    '^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$',
    '^(\\([0-9]{3}\\))?[0-9]{3}-[0-9]{4}$',
    '^[\\u0041-\\u005A]{2}\\x2D\\w$',
    '^.{3}$',
  ])('pattern %s', (pattern) => {
    expectValid({ type: 'string', pattern });
  });

  it('keeps the text when it already matches the pattern', () => {
    expect(expectValid({ type: 'string', pattern: '^[A-Za-z ]+$' })).toBe('Paris in spring');
  });

  it('satisfies a pattern together with length limits', () => {
    expectValid({ type: 'string', pattern: '^\\w+$', minLength: 10 });
    expectValid({ type: 'string', pattern: '^[a-z]*$', minLength: 4, maxLength: 6 });
    expectValid({ type: 'string', pattern: 'x', minLength: 30 });
  });

  it('gives a best effort, without throwing, for a pattern it cannot satisfy', () => {
    const instance = jsonSchemaInstance({ type: 'string', pattern: '^(?=.*\\d)(?=.*[a-z])[a-z\\d]{2}$' });
    expect(typeof instance).toBe('string');
    expect(typeof jsonSchemaInstance({ type: 'string', minLength: 5, maxLength: 2 })).toBe('string');
  });
});

describe('jsonSchemaInstance: numbers', () => {
  it.each([
    [{ type: 'integer', minimum: 18 }, 18],
    [{ type: 'integer', maximum: -3 }, -3],
    [{ type: 'integer', exclusiveMinimum: 1 }, 2],
    [{ type: 'integer', exclusiveMaximum: 0 }, -1],
    [{ type: 'number', minimum: 0, maximum: 0.5 }, 0.5],
    [{ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.3 }, 0.15],
    [{ type: 'integer', multipleOf: 7, minimum: 50 }, 56],
    [{ type: 'number', multipleOf: 0.01 }, 1],
    [{ type: 'number', multipleOf: 0.1, minimum: 1.25 }, 1.3],
    [{ type: 'integer', minimum: 1, maximum: 1 }, 1],
    [{ type: 'integer', multipleOf: 0.5, minimum: 1.2 }, 2],
    [{ minimum: 5 }, 5],
  ])('%j → %j', (schema, expected) => {
    const instance = expectValid(schema);
    expect(instance).toBe(expected);
  });
});

describe('jsonSchemaInstance: enum and const', () => {
  it('takes the first enum value that fits the other keywords', () => {
    expect(expectValid({ enum: ['celsius', 'fahrenheit'] })).toBe('celsius');
    expect(expectValid({ type: 'string', enum: [1, 'b', 'c'] })).toBe('b');
    expect(expectValid({ type: ['string', 'null'], enum: ['a', null] })).toBe('a');
    expect(expectValid({ const: { fixed: [1, 2] } })).toEqual({ fixed: [1, 2] });
  });
});

describe('jsonSchemaInstance: objects', () => {
  it('includes every property, required or not', () => {
    const instance = expectValid({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'integer' } },
      required: ['a'],
    });
    expect(Object.keys(instance as object)).toEqual(['a', 'b']);
  });

  it('fills required properties that are not declared, from additionalProperties', () => {
    expect(expectValid({ type: 'object', required: ['x'], additionalProperties: { type: 'integer' } })).toEqual({ x: 1 });
  });

  it('adds properties for minProperties, named by patternProperties when needed', () => {
    expect(expectValid({ type: 'object', additionalProperties: { type: 'boolean' }, minProperties: 2 })).toEqual({ property1: true, property2: true });
    const instance = expectValid({ type: 'object', patternProperties: { '^x-[a-z]+$': { type: 'string' } }, additionalProperties: false, minProperties: 1 });
    expect(Object.keys(instance as object)).toHaveLength(1);
  });

  it('respects maxProperties by leaving out optional properties', () => {
    const instance = expectValid({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'string' }, c: { type: 'string' } },
      required: ['c'],
      maxProperties: 2,
    });
    expect(Object.keys(instance as object)).toEqual(['a', 'c']);
  });

  it('applies patternProperties to matching declared properties', () => {
    expectValid({ type: 'object', properties: { code: { type: 'string' } }, patternProperties: { '^co': { maxLength: 2 } } });
  });

  it('adds properties named by dependentRequired and dependencies', () => {
    expectValid({ type: 'object', properties: { card: { type: 'string' } }, required: ['card'], dependentRequired: { card: ['billing'] } });
    expectValid({ type: 'object', properties: { card: { type: 'string' } }, required: ['card'], dependencies: { card: ['billing'] } }, { draft: '7' });
  });
});

describe('jsonSchemaInstance: arrays', () => {
  it('makes one item by default, minItems items when more are needed, none when maxItems is 0', () => {
    expect(expectValid({ type: 'array', items: { type: 'integer' } })).toEqual([1]);
    expect(expectValid({ type: 'array', items: { type: 'string' }, minItems: 3 })).toHaveLength(3);
    expect(expectValid({ type: 'array', maxItems: 0 })).toEqual([]);
  });

  it('makes distinct items for uniqueItems', () => {
    expectValid({ type: 'array', items: { type: 'integer' }, minItems: 4, uniqueItems: true });
    expectValid({ type: 'array', items: { type: 'string' }, minItems: 3, uniqueItems: true });
    expectValid({ type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 3, uniqueItems: true });
    expectValid({ type: 'array', items: { type: 'boolean' }, minItems: 2, uniqueItems: true });
    expectValid({ type: 'array', items: { type: 'string', format: 'email' }, minItems: 3, uniqueItems: true });
    expectValid({
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
      minItems: 2,
      uniqueItems: true,
    });
  });

  it('fills tuples: prefixItems (2020-12) and items arrays (draft 7)', () => {
    expect(expectValid({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false })).toEqual(['Paris in spring', 1]);
    expect(
      expectValid({ type: 'array', items: [{ type: 'boolean' }, { type: 'null' }], additionalItems: false }, { draft: '7' }),
    ).toEqual([true, null]);
    expectValid({ type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'integer' }, minItems: 3 });
  });

  it('puts an item that matches contains first', () => {
    expect(expectValid({ type: 'array', items: { type: 'integer' }, contains: { minimum: 5 } })).toEqual([5]);
    expectValid({ type: 'array', items: { type: 'integer' }, contains: { const: 3 }, minContains: 2 });
  });
});

describe('jsonSchemaInstance: combinators', () => {
  it('anyOf: the first branch that works', () => {
    expect(expectValid({ anyOf: [{ type: 'string', minLength: 5, maxLength: 2 }, { type: 'integer' }] })).toBe(1);
    expect(expectValid({ anyOf: [{ type: 'string' }, { type: 'null' }] })).toBe('Paris in spring');
  });

  it('oneOf: a value that matches exactly one branch', () => {
    expectValid({ oneOf: [{ type: 'number' }, { type: 'integer' }] });
    expectValid({ oneOf: [{ type: 'string' }, { type: 'string', maxLength: 100 }, { type: 'integer' }] });
    expectValid({ type: 'object', oneOf: [{ required: ['a'] }, { required: ['b'] }], properties: { a: { type: 'string' } } });
  });

  it('allOf: merges objects, bounds and types', () => {
    const instance = expectValid({
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
        { properties: { b: { type: 'integer', minimum: 3 } }, required: ['b'] },
        { properties: { b: { maximum: 10, multipleOf: 2 } } },
      ],
    });
    expect(instance).toEqual({ a: 'Paris in spring', b: 4 });
    expect(expectValid({ allOf: [{ type: ['number', 'string'] }, { type: 'integer' }] })).toBe(1);
    expectValid({ allOf: [{ anyOf: [{ type: 'string' }, { type: 'integer' }] }, { anyOf: [{ type: 'integer' }, { type: 'null' }] }] });
  });

  it('if/then/else', () => {
    const schema = {
      type: 'object',
      properties: { kind: { enum: ['number', 'text'] }, value: {} },
      required: ['kind', 'value'],
      if: { properties: { kind: { const: 'number' } } },
      then: { properties: { value: { type: 'integer' } } },
      else: { properties: { value: { type: 'string' } } },
    };
    expect(expectValid(schema)).toEqual({ kind: 'number', value: 1 });
  });

  it('not', () => {
    expect(expectValid({ type: ['string', 'integer'], not: { type: 'string' } })).toBe(1);
    expectValid({ type: 'integer', not: { const: 1 } });
    expectValid({ not: { type: ['string', 'number'] } });
  });
});

describe('jsonSchemaInstance: references', () => {
  it('follows #/$defs and #/definitions, and $ref with sibling keywords', () => {
    expectValid({ $defs: { name: { type: 'string', maxLength: 4 } }, type: 'object', properties: { n: { $ref: '#/$defs/name' } } });
    expectValid({ definitions: { age: { type: 'integer', minimum: 21 } }, type: 'array', items: { $ref: '#/definitions/age' } }, { draft: '7' });
    expectValid({ $defs: { base: { type: 'string' } }, $ref: '#/$defs/base', minLength: 30 });
    expectValid({ $defs: { 'a/b': { type: 'boolean' }, 'c~d': { type: 'null' } }, prefixItems: [{ $ref: '#/$defs/a~1b' }, { $ref: '#/$defs/c~0d' }], type: 'array', items: false });
  });

  it('bounds recursion: linked lists, trees and the root', () => {
    const linkedList = {
      $defs: {
        node: {
          type: 'object',
          properties: { value: { type: 'integer' }, next: { anyOf: [{ $ref: '#/$defs/node' }, { type: 'null' }] } },
          required: ['value', 'next'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/node',
    };
    expect(expectValid(linkedList)).toEqual({ value: 1, next: { value: 1, next: null } });

    const tree = {
      type: 'object',
      properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } },
      required: ['name', 'children'],
      additionalProperties: false,
    };
    const instance = expectValid(tree) as { children: Array<{ children: Array<{ children: unknown[] }> }> };
    expect(instance.children[0]?.children[0]?.children).toEqual([]);

    const mutual = {
      $defs: {
        a: { type: 'object', properties: { b: { anyOf: [{ $ref: '#/$defs/b' }, { type: 'null' }] } }, required: ['b'] },
        b: { type: 'object', properties: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, required: ['a'] },
      },
      $ref: '#/$defs/a',
    };
    expectValid(mutual);
  });
});

describe('jsonSchemaInstance: OpenAI strict-mode schemas', () => {
  it('a typical tool', () => {
    const instance = expectValid({
      type: 'object',
      properties: {
        location: { type: 'string', description: 'City and country' },
        unit: { type: ['string', 'null'], enum: ['celsius', 'fahrenheit', null] },
        days: { type: 'integer' },
        include_hourly: { type: 'boolean' },
      },
      required: ['location', 'unit', 'days', 'include_hourly'],
      additionalProperties: false,
    });
    expect(instance).toEqual({ location: 'Paris in spring', unit: 'celsius', days: 1, include_hourly: true });
  });

  it('math reasoning (nested arrays of objects)', () => {
    expectValid({
      type: 'object',
      properties: {
        steps: {
          type: 'array',
          items: {
            type: 'object',
            properties: { explanation: { type: 'string' }, output: { type: 'string' } },
            required: ['explanation', 'output'],
            additionalProperties: false,
          },
        },
        final_answer: { type: 'string' },
      },
      required: ['steps', 'final_answer'],
      additionalProperties: false,
    });
  });

  it('recursive UI schema with enums and $ref to the root', () => {
    expectValid({
      type: 'object',
      properties: {
        type: { type: 'string', enum: ['div', 'button', 'header', 'section', 'field', 'form'] },
        label: { type: 'string' },
        children: { type: 'array', items: { $ref: '#' } },
        attributes: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, value: { type: 'string' } },
            required: ['name', 'value'],
            additionalProperties: false,
          },
        },
      },
      required: ['type', 'label', 'children', 'attributes'],
      additionalProperties: false,
    });
  });

  it('anyOf of object shapes with $defs and nullable fields', () => {
    expectValid({
      type: 'object',
      properties: {
        item: {
          anyOf: [
            { $ref: '#/$defs/user' },
            {
              type: 'object',
              properties: { number: { type: 'string' }, street: { type: 'string' }, city: { type: ['string', 'null'] } },
              required: ['number', 'street', 'city'],
              additionalProperties: false,
            },
          ],
        },
      },
      required: ['item'],
      additionalProperties: false,
      $defs: {
        user: {
          type: 'object',
          properties: { name: { type: 'string' }, age: { type: 'number', minimum: 0, maximum: 150 }, email: { type: 'string', format: 'email' } },
          required: ['name', 'age', 'email'],
          additionalProperties: false,
        },
      },
    });
  });
});

describe('jsonSchemaInstance: robustness', () => {
  it('is deterministic', () => {
    const schema = { type: 'object', properties: { a: { type: 'array', items: { type: 'string', format: 'uuid' } } } };
    expect(jsonSchemaInstance(schema, { text: 'x' })).toEqual(jsonSchemaInstance(schema, { text: 'x' }));
  });

  it('never throws on odd or contradictory schemas', () => {
    for (const schema of [false, { type: 'string', const: 3 }, { $ref: '#/$defs/missing' }, { $ref: 'https://example.com/remote.json' }, 42, null, { type: 'nonsense' }, { allOf: [{ type: 'string' }, { type: 'integer' }] }, { $ref: '#' }]) {
      expect(() => jsonSchemaInstance(schema)).not.toThrow();
    }
  });
});
