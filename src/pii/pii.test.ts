import { describe, expect, it } from 'vitest';
import { detect, mask, Pseudonymizer } from './index.js';
import { measureThroughput } from '../../test/support/pii-sample.js';

describe('detectors', () => {
  it('finds each kind and leaves look-alikes alone', () => {
    const text = 'Mail a.b@example.com, call +33 6 12 34 56 78, card 4111-1111-1111-1111, IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, host 192.168.0.1 and ::1, key ghp_' + 'a1B2'.repeat(9) + '.';
    expect(detect(text).map((d) => d.kind)).toEqual(['email', 'phone', 'card', 'iban', 'ssn', 'ip', 'ip', 'secret']);
    const negatives = 'Order #2024-118823 on 2024-03-15T10:22:31Z, version 1.2.3.4, v1.2.3, 4111 1111 1111 1112, SSN 666-12-3456, 000-12-3456, 10.0.0.256, sha 3f7a9c2e5b1d4e6f8a0b2c4d6e8f0a1b2c3d4e5f, std::vector';
    expect(detect(negatives)).toEqual([]);
  });

  it('can switch detectors off and add custom patterns', () => {
    const text = 'EMP-123456 wrote from a.b@example.com';
    expect(detect(text, { detectors: { email: false } })).toEqual([]);
    const found = detect(text, { custom: [{ name: 'employee', regex: 'EMP-\\d{6}', kind: 'employee_id' }] });
    expect(found.map((d) => d.kind)).toEqual(['employee_id', 'email']);
    expect(mask(text, { custom: [{ name: 'employee', regex: 'EMP-\\d{6}', kind: 'employee_id' }] }).text).toBe('[EMPLOYEE_ID_1] wrote from [EMAIL_1]');
  });
});

describe('mask and Pseudonymizer', () => {
  it('numbers placeholders per kind and reuses them for the same value', () => {
    const p = new Pseudonymizer();
    const first = p.redact('a@example.com, b@example.com, A@example.com, 4111 1111 1111 1111');
    expect(first.text).toBe('[EMAIL_1], [EMAIL_2], [EMAIL_1], [CARD_1]');
    expect(p.redact('again 4111-1111-1111-1111 and b@example.com').text).toBe('again [CARD_1] and [EMAIL_2]');
    expect(p.restore('Sent to [EMAIL_2] and [EMAIL_9].')).toBe('Sent to b@example.com and [EMAIL_9].');
    expect(JSON.stringify(p)).not.toContain('@');
    expect(String(p)).not.toContain('@');
  });

  it('restores a stream under every chunking', () => {
    const p = new Pseudonymizer();
    for (let index = 0; index < 12; index += 1) p.placeholderFor('email', `user${index}@example.com`);
    p.placeholderFor('card', '4111 1111 1111 1111');
    const answer = 'Dear [EMAIL_1], [[EMAIL_10]] and [EMAIL_12] [CARD_1][ [EMAIL_ x [EMAIL_1';
    const expected = p.restore(answer);
    expect(expected).toContain('user0@example.com');
    // Every split into two and three pieces, and one character at a time.
    const runs: string[][] = [[...answer]];
    for (let i = 0; i <= answer.length; i += 1) {
      runs.push([answer.slice(0, i), answer.slice(i)]);
      for (let j = i; j <= answer.length; j += 3) runs.push([answer.slice(0, i), answer.slice(i, j), answer.slice(j)]);
    }
    for (const chunks of runs) {
      const restorer = p.restorer();
      let out = '';
      for (const chunk of chunks) {
        out += restorer.push(chunk);
        expect(restorer.pending).toBeLessThan(11);
      }
      out += restorer.end();
      expect(out).toBe(expected);
    }
  });

  it('releases text that cannot be a placeholder at once', () => {
    const p = new Pseudonymizer();
    p.placeholderFor('email', 'x@example.com');
    const restorer = p.restorer();
    expect(restorer.push('see [1] and [EM')).toBe('see [1] and ');
    expect(restorer.push('AIL_1] ok [X')).toBe('x@example.com ok [X');
    expect(restorer.end()).toBe('');
  });
});

describe('throughput', () => {
  it('measures MB/s on a ~4,000-token prompt', () => {
    const result = measureThroughput({ iterations: 5 });
    console.log(`PII redaction: ${result.megabytesPerSecond.toFixed(2)} MB/s, ${result.msPerPrompt.toFixed(1)} ms per ${result.bytes}-byte prompt`);
    expect(result.megabytesPerSecond).toBeGreaterThan(0);
  });
});
