import { describe, expect, it } from 'vitest';
import { unsatisfiableRequired } from './unsatisfiable-required.js';

describe('unsatisfiableRequired', () => {
  it('finds a required key missing from properties when no other key is allowed', () => {
    expect(unsatisfiableRequired({ type: 'object', required: ['a'], additionalProperties: false })).toEqual({ path: [], key: 'a' });
    const nested = { type: 'object', properties: { list: { type: 'array', items: { type: 'object', properties: { x: {} }, required: ['x', 'y'], additionalProperties: false } } } };
    expect(unsatisfiableRequired(nested)).toEqual({ path: ['properties', 'list', 'items'], key: 'y' });
    expect(unsatisfiableRequired({ $defs: { d: { required: ['z'], additionalProperties: false } } })).toEqual({ path: ['$defs', 'd'], key: 'z' });
  });

  it('accepts satisfiable schemas', () => {
    expect(unsatisfiableRequired({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false })).toBeNull();
    expect(unsatisfiableRequired({ type: 'object', required: ['a'] })).toBeNull();
    expect(unsatisfiableRequired({ type: 'object', properties: { constructor: {} }, required: ['constructor'], additionalProperties: false })).toBeNull();
    expect(unsatisfiableRequired(undefined)).toBeNull();
    expect(unsatisfiableRequired('not a schema')).toBeNull();
  });

  it('walks a deeply nested schema without exhausting the stack', () => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 100_000; i++) schema = { type: 'object', properties: { a: schema } };
    expect(unsatisfiableRequired(schema)).toBeNull();
  });
});
