import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { matchesSchema } from './json-schema-check.js';

const draft2020 = new Ajv2020({ strict: false, validateFormats: false });
const draft7 = new Ajv({ strict: false, validateFormats: false });

/** Schema and values: the mock's checker must agree with ajv on each. */
const cases: Array<[Record<string, unknown>, unknown[], ('7' | '2020')?]> = [
  [{ type: 'integer' }, [1, 1.5, '1', null]],
  [{ type: ['string', 'null'] }, ['a', null, 0]],
  [{ enum: [1, 'a', { b: [1] }] }, [1, 'a', { b: [1] }, { b: [2] }]],
  [{ const: [1, 2] }, [[1, 2], [2, 1]]],
  [{ minimum: 1, exclusiveMaximum: 3, multipleOf: 0.5 }, [1, 2.5, 3, 0.5, 1.25]],
  [{ minLength: 2, maxLength: 3 }, ['a', 'ab', 'abcd', '🙂🙂', '🙂🙂🙂🙂']],
  [{ pattern: '^a+$' }, ['aaa', 'ab', 5]],
  [{ type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'integer' }, minItems: 1, uniqueItems: true }, [['a', 1], [1], [], ['a', 1, 1]]],
  [{ type: 'array', items: [{ type: 'string' }], additionalItems: false }, [['a'], ['a', 1]], '7'],
  [{ contains: { const: 2 }, minContains: 2 }, [[2, 2], [2, 1], 'x']],
  [
    { type: 'object', properties: { a: { type: 'string' } }, patternProperties: { '^x-': { type: 'integer' } }, additionalProperties: false, required: ['a'] },
    [{ a: 'x' }, { a: 'x', 'x-y': 1 }, { a: 'x', 'x-y': 'no' }, { a: 'x', b: 1 }, {}],
  ],
  [{ minProperties: 1, maxProperties: 2, propertyNames: { maxLength: 2 } }, [{}, { a: 1 }, { abc: 1 }, { a: 1, b: 2, c: 3 }]],
  [{ dependentRequired: { a: ['b'] } }, [{ a: 1 }, { a: 1, b: 1 }, { b: 1 }]],
  [{ anyOf: [{ type: 'string' }, { minimum: 3 }] }, ['x', 4, 1]],
  [{ oneOf: [{ type: 'number' }, { type: 'integer' }] }, [1, 1.5]],
  [{ allOf: [{ minimum: 1 }, { maximum: 2 }], not: { const: 2 } }, [1, 2, 3]],
  [{ if: { type: 'string' }, then: { minLength: 2 }, else: { type: 'integer' } }, ['a', 'ab', 1, 1.5]],
  [{ $defs: { n: { type: 'object', properties: { next: { anyOf: [{ $ref: '#/$defs/n' }, { type: 'null' }] } } } }, $ref: '#/$defs/n' }, [{ next: { next: null } }, { next: { next: 1 } }]],
];

describe('matchesSchema agrees with ajv', () => {
  it.each(cases)('%j', (schema, values, draft) => {
    const validate = (draft === '7' ? draft7 : draft2020).compile(schema);
    for (const value of values) expect(matchesSchema(value, schema), JSON.stringify(value)).toBe(validate(value));
  });
});
