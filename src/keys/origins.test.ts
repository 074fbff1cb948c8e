import { describe, expect, it } from 'vitest';
import { isValidOriginPattern, originAllowed, originPatternsWithin, requestOrigin } from './origins.js';

describe('origins', () => {
  it('validates patterns', () => {
    for (const good of ['https://app.example.com', 'http://localhost:3000', '*.example.com', 'https://*.example.com', 'app.example.com']) expect(isValidOriginPattern(good)).toBe(true);
    for (const bad of ['', 'https://', 'https://a.com/path', 'ht tp://a.com', 'https://a.com:99999', '*', 'https://*.']) expect(isValidOriginPattern(bad)).toBe(false);
  });

  it('matches exact origins with their default port', () => {
    const patterns = ['https://app.example.com', 'http://localhost:3000'];
    expect(originAllowed(patterns, 'https://app.example.com')).toBe(true);
    expect(originAllowed(patterns, 'https://app.example.com:443')).toBe(true);
    expect(originAllowed(patterns, 'http://app.example.com')).toBe(false);
    expect(originAllowed(patterns, 'https://app.example.com:8443')).toBe(false);
    expect(originAllowed(patterns, 'http://localhost:3000')).toBe(true);
    expect(originAllowed(patterns, 'http://localhost:3001')).toBe(false);
    expect(originAllowed(patterns, 'https://evil.com')).toBe(false);
    expect(originAllowed(patterns, null)).toBe(false);
    expect(originAllowed(null, null)).toBe(true);
  });

  it('matches *.domain wildcards on subdomains only', () => {
    expect(originAllowed(['*.example.com'], 'https://a.example.com')).toBe(true);
    expect(originAllowed(['*.example.com'], 'http://a.b.example.com:8080')).toBe(true);
    expect(originAllowed(['*.example.com'], 'https://example.com')).toBe(false);
    expect(originAllowed(['*.example.com'], 'https://evilexample.com')).toBe(false);
    expect(originAllowed(['https://*.example.com'], 'http://a.example.com')).toBe(false);
  });

  it('takes the Origin header, else the Referer origin', () => {
    expect(requestOrigin('https://a.com', 'https://b.com/page')).toBe('https://a.com');
    expect(requestOrigin(undefined, 'https://b.com/page?x=1')).toBe('https://b.com');
    expect(requestOrigin('null', 'https://b.com/x')).toBe('https://b.com');
    expect(requestOrigin(undefined, 'not a url')).toBeNull();
    expect(requestOrigin(undefined, undefined)).toBeNull();
  });

  it('knows when patterns lie within others', () => {
    expect(originPatternsWithin(['https://a.example.com'], ['*.example.com'])).toBe(true);
    expect(originPatternsWithin(['*.a.example.com'], ['https://*.example.com'])).toBe(false);
    expect(originPatternsWithin(['https://*.a.example.com'], ['https://*.example.com'])).toBe(true);
    expect(originPatternsWithin(['*.example.com'], ['https://a.example.com'])).toBe(false);
    expect(originPatternsWithin(['https://evil.com'], ['https://a.example.com'])).toBe(false);
  });
});
