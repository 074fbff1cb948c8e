import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CASSETTE_VERSION,
  CassetteError,
  CassetteIndex,
  canonicalBody,
  canonicalJson,
  decodeChunk,
  encodeChunk,
  keptRequestHeadersOf,
  keptResponseHeadersOf,
  loadCassette,
  parseCassette,
  redact,
  secretsOf,
  sha256,
  type CassetteExchange,
} from './cassette.js';

function exchange(path: string, body: unknown, text: string): CassetteExchange {
  return {
    version: CASSETTE_VERSION,
    recorded_at: '2026-01-01T00:00:00.000Z',
    request: { method: 'POST', path, headers: {}, body_sha256: sha256(canonicalJson(body)), body },
    response: { status: 200, headers: { 'content-type': 'application/json' }, ms: 1, chunks: [{ ms: 0, text }] },
  };
}

describe('cassette format', () => {
  it('canonicalizes JSON with sorted keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
    expect(canonicalBody('{"stream":true,"model":"m"}')).toBe(canonicalBody('{ "model": "m", "stream": true }'));
    expect(canonicalBody('not json')).toBe('not json');
  });

  it('stores chunks as text when they are valid UTF-8, else base64, and decodes them byte for byte', () => {
    const euro = Buffer.from('€', 'utf8');
    const text = encodeChunk(Buffer.from('data: {"a":"é"}\n\n'), 3);
    expect(text).toEqual({ ms: 3, text: 'data: {"a":"é"}\n\n' });
    const cut = encodeChunk(euro.subarray(0, 2), 4);
    expect('base64' in cut).toBe(true);
    expect(decodeChunk(cut).equals(euro.subarray(0, 2))).toBe(true);
    const bom = Buffer.from([0xef, 0xbb, 0xbf, 0x61]);
    expect(decodeChunk(encodeChunk(bom, 0)).equals(bom)).toBe(true);
  });

  it('finds secrets in headers and redacts them; keeps only harmless headers', () => {
    const headers = ['content-type', 'application/json', 'authorization', 'Bearer sk-secret-123', 'x-api-key', 'azure-key-999', 'openai-organization', 'org-1', 'x-request-id', 'req_1'];
    const secrets = secretsOf(headers);
    expect(secrets).toContain('sk-secret-123');
    expect(secrets).toContain('azure-key-999');
    expect(secrets).not.toContain('org-1');
    expect(redact('key sk-secret-123 and azure-key-999', secrets)).toBe('key [REDACTED] and [REDACTED]');
    expect(keptRequestHeadersOf(headers)).toEqual({ 'content-type': 'application/json' });
    expect(keptResponseHeadersOf({ 'content-type': 'text/event-stream', 'set-cookie': ['a=b'], 'retry-after': '1', 'x-ratelimit-remaining-requests': '9' })).toEqual({
      'content-type': 'text/event-stream',
      'retry-after': '1',
      'x-ratelimit-remaining-requests': '9',
    });
  });

  it('names the file and line of a bad cassette line', () => {
    const good = JSON.stringify(exchange('/v1/chat/completions', { a: 1 }, '{}'));
    expect(parseCassette(`${good}\n\n${good}\n`, 'c.jsonl')).toHaveLength(2);
    expect(() => parseCassette(`${good}\n{oops\n`, 'c.jsonl')).toThrow(/c\.jsonl, line 2: not valid JSON/);
    expect(() => parseCassette(`${JSON.stringify({ ...exchange('/p', {}, ''), version: 9 })}\n`, 'c.jsonl')).toThrow(/line 1: unsupported version 9/);
    const noStatus = { ...exchange('/p', {}, ''), response: { headers: {}, chunks: [] } };
    expect(() => parseCassette(JSON.stringify(noStatus), 'c.jsonl')).toThrow(/response\.status/);
    const badChunk = exchange('/p', {}, '');
    (badChunk.response.chunks as unknown[]) = [{ ms: 0 }];
    expect(() => parseCassette(JSON.stringify(badChunk), 'c.jsonl')).toThrow(/chunk 0 has neither/);
  });

  it('requires the file in replay, not in replay_or_record', () => {
    const directory = mkdtempSync(join(tmpdir(), 'cassette-'));
    const missing = join(directory, 'missing.jsonl');
    expect(loadCassette(missing, false)).toEqual([]);
    expect(() => loadCassette(missing, true)).toThrow(CassetteError);
    expect(() => loadCassette(missing, true)).toThrow(/does not exist\. Record it first.*CHATGATE_RECORD_REPLAY=record/);
    const file = join(directory, 'c.jsonl');
    writeFileSync(file, `${JSON.stringify(exchange('/v1/embeddings', { input: 'x' }, '{}'))}\n`);
    expect(loadCassette(file, true)).toHaveLength(1);
  });
});

describe('cassette matching', () => {
  it('serves identical requests in recorded order, then repeats the last', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const index = new CassetteIndex('body_and_path', [exchange('/v1/chat/completions', body, 'first'), exchange('/v1/chat/completions', body, 'second')]);
    const canonical = canonicalJson({ messages: [{ content: 'hi', role: 'user' }], model: 'm' });
    const served = [1, 2, 3].map(() => index.take('POST', '/v1/chat/completions', canonical)?.response.chunks[0]);
    expect(served.map((chunk) => (chunk && 'text' in chunk ? chunk.text : undefined))).toEqual(['first', 'second', 'second']);
  });

  it('matches on body and path by default, on the body alone with match: body', () => {
    const body = { model: 'm', prompt: 'x' };
    const canonical = canonicalJson(body);
    const byPath = new CassetteIndex('body_and_path', [exchange('/v1/completions', body, 'c')]);
    expect(byPath.take('POST', '/other/v1/completions', canonical)).toBeUndefined();
    expect(byPath.take('POST', '/v1/completions', canonical)).toBeDefined();
    const byBody = new CassetteIndex('body', [exchange('/v1/completions', body, 'c')]);
    expect(byBody.take('POST', '/other/v1/completions', canonical)).toBeDefined();
  });

  it('keeps a streamed and a non-streamed request apart', () => {
    const index = new CassetteIndex('body_and_path', [exchange('/v1/chat/completions', { model: 'm', stream: true }, 'sse')]);
    expect(index.take('POST', '/v1/chat/completions', canonicalJson({ model: 'm' }))).toBeUndefined();
    expect(index.take('POST', '/v1/chat/completions', canonicalJson({ model: 'm', stream: true }))).toBeDefined();
  });
});
