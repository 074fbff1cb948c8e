import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error.js';
import { storableBody } from './background-resources.js';

describe('storableBody', () => {
  it('refuses text PostgreSQL cannot store (NUL, unpaired surrogates) with 400 naming the field', () => {
    for (const [body, param] of [
      [{ input_file_id: 'file-1', metadata: { a: 'b\u0000' } }, 'metadata.a'],
      [{ input_file_id: 'file-1', metadata: { a: 'b\ud800' } }, 'metadata.a'],
      [{ training_file: '\udfff' }, 'training_file'],
      [{ metadata: { ['k\u0000']: 'v' } }, 'metadata.k\\u0000'],
    ] as const) {
      let error: unknown;
      try {
        storableBody(body);
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(body)).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ status: 400, param, code: 'invalid_value' });
    }
  });

  it('passes other bodies through', () => {
    const body = { input_file_id: 'file-1', metadata: { team: 'ñandú 😀' } };
    expect(storableBody(body)).toBe(body);
  });
});
