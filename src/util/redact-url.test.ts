import { describe, expect, it } from 'vitest';
import { redactUrl } from './redact-url.js';

describe('redactUrl', () => {
  it('hides passwords and secret query parameters, keeping the rest readable', () => {
    expect(redactUrl('http://user:pw@127.0.0.1:9000/v1')).toBe('http://user:***@127.0.0.1:9000/v1');
    expect(redactUrl('postgres://chatgate:s3cret@db:5432/chatgate?sslmode=require&password=x')).toBe('postgres://chatgate:***@db:5432/chatgate?sslmode=require&password=***');
    expect(redactUrl('https://api.example.com/v1?api-key=abc&region=eu')).toBe('https://api.example.com/v1?api-key=***&region=eu');
    expect(redactUrl('http://127.0.0.1:8081/v1')).toBe('http://127.0.0.1:8081/v1');
    expect(redactUrl('not a url http://u:pw@host')).toBe('not a url http://u:***@host');
  });
});
