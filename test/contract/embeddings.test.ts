/**
 * `POST /v1/embeddings` through the official `openai` SDK (which asks for base64 by default
 * and decodes it) against a real `chatgate serve`: a mock model, an openai-compatible model on
 * the fake upstream and a llama-cpp model on a tiny GGUF.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeEmbedding, startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { writeTinyGguf } from '../support/tiny-gguf.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-embeddings-contract-'));
let upstream: FakeUpstream;
let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const path = join(directory, 'tiny.gguf');
  await writeTinyGguf(path, { seed: 7 });
  chatgate = await startChatgate({
    config: [
      'models:',
      '  - name: mock-embed',
      '    provider: mock',
      '  - name: upstream-embed',
      '    provider: openai-compatible',
      `    base_url: ${upstream.url}`,
      '    model: upstream-embedding-model',
      '  - name: tiny-llama',
      '    provider: llama-cpp',
      `    path: ${JSON.stringify(path)}`,
      '    threads: 1',
      '    context_size: 64',
      '    gpu_layers: 0',
      '',
    ].join('\n'),
  });
  client = chatgate.client();
});
afterAll(async () => {
  await chatgate?.stop();
  await upstream?.close();
  rmSync(directory, { recursive: true, force: true });
});

function norm(vector: number[]): number {
  return Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
}

function dot(a: number[], b: number[]): number {
  return a.reduce((sum, value, index) => sum + value * b[index]!, 0);
}

describe('mock embeddings', () => {
  it('answer a string input in OpenAI shape, the SDK default (base64) decoded to the same floats', async () => {
    const decoded = await client.embeddings.create({ model: 'mock-embed', input: 'The food was delicious' });
    const floats = await client.embeddings.create({ model: 'mock-embed', input: 'The food was delicious', encoding_format: 'float' });
    expect(floats).toMatchObject({ object: 'list', model: 'mock-embed', data: [{ object: 'embedding', index: 0 }] });
    expect(floats.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
    expect(floats.data[0]!.embedding).toHaveLength(1536);
    expect(norm(floats.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(decoded.data[0]!.embedding).toEqual(floats.data[0]!.embedding);
  });

  it('sends base64 on the wire when asked', async () => {
    const raw = (await client.embeddings.create({ model: 'mock-embed', input: 'abc', encoding_format: 'base64' })) as unknown as {
      data: Array<{ embedding: unknown }>;
    };
    expect(typeof raw.data[0]!.embedding).toBe('string');
    expect(Buffer.from(raw.data[0]!.embedding as string, 'base64')).toHaveLength(1536 * 4);
  });

  it('answer an array input in order, similar texts closer', async () => {
    const response = await client.embeddings.create({ model: 'mock-embed', input: ['reset my password', 'how to reset a password', 'tomato soup recipe'] });
    expect(response.data.map((item) => item.index)).toEqual([0, 1, 2]);
    const [a, b, c] = response.data.map((item) => item.embedding);
    expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
  });

  it('honour dimensions with unit vectors', async () => {
    const response = await client.embeddings.create({ model: 'mock-embed', input: ['one', 'two'], dimensions: 256 });
    for (const item of response.data) {
      expect(item.embedding).toHaveLength(256);
      expect(norm(item.embedding)).toBeCloseTo(1, 5);
    }
  });

  it('refuse an unknown model (404) and an empty input (400)', async () => {
    await expect(client.embeddings.create({ model: 'no-such-model', input: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.embeddings.create({ model: 'mock-embed', input: '' })).rejects.toMatchObject({ status: 400, param: 'input' });
    await expect(client.embeddings.create({ model: 'mock-embed', input: [] })).rejects.toMatchObject({ status: 400, param: 'input' });
  });

  it('answer GET with 405', async () => {
    const response = await fetch(`${chatgate.url}/embeddings`, { headers: { authorization: `Bearer ${chatgate.key}` } });
    expect(response.status).toBe(405);
  });
});

describe('openai-compatible embeddings', () => {
  beforeEach(() => upstream.reset());

  it('pass the request upstream with the model renamed and the encoding asked, decoding base64', async () => {
    const response = await client.embeddings.create({ model: 'upstream-embed', input: ['alpha', 'beta gamma'], user: 'u1' });
    const body = upstream.requests[0]!.body!;
    expect(upstream.requests[0]!.path).toBe('/v1/embeddings');
    expect(body).toMatchObject({ model: 'upstream-embedding-model', input: ['alpha', 'beta gamma'], encoding_format: 'base64', user: 'u1' });
    expect(response.model).toBe('upstream-embed');
    expect(response.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    expect(response.data.map((item) => item.embedding)).toEqual([fakeEmbedding('alpha'), fakeEmbedding('beta gamma')]);
  });

  it('answer floats from a float upstream', async () => {
    const response = await client.embeddings.create({ model: 'upstream-embed', input: 'alpha', encoding_format: 'float' });
    expect(upstream.requests[0]!.body!['encoding_format']).toBe('float');
    expect(response.data[0]!.embedding).toEqual(fakeEmbedding('alpha'));
  });

  it('truncate and renormalize vectors longer than dimensions, and carry upstream errors over', async () => {
    upstream.setBehavior({ kind: 'answer', ignoreDimensions: true });
    const response = await client.embeddings.create({ model: 'upstream-embed', input: 'alpha', dimensions: 3 });
    const expected = fakeEmbedding('alpha').slice(0, 3);
    const length = norm(expected);
    expect(response.data[0]!.embedding).toHaveLength(3);
    response.data[0]!.embedding.forEach((value, index) => expect(value).toBeCloseTo(expected[index]! / length, 6));

    upstream.setBehavior({ kind: 'error', status: 429 });
    await expect(client.embeddings.create({ model: 'upstream-embed', input: 'alpha' })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });
});

describe('llama-cpp embeddings', () => {
  it('answer unit vectors for text and token inputs, with token usage', async () => {
    const response = await client.embeddings.create({ model: 'tiny-llama', input: ['hello world', 'hello world', 'the end'], encoding_format: 'float' });
    expect(response.data).toHaveLength(3);
    const [a, b, c] = response.data.map((item) => item.embedding);
    expect(a!.length).toBeGreaterThan(0);
    expect(norm(a!)).toBeCloseTo(1, 4);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(response.usage.prompt_tokens).toBeGreaterThan(3);
    const decoded = await client.embeddings.create({ model: 'tiny-llama', input: 'hello world' });
    decoded.data[0]!.embedding.forEach((value, index) => expect(value).toBeCloseTo(a![index]!, 5));
    const tokens = await client.embeddings.create({ model: 'tiny-llama', input: [[5, 6, 7]], encoding_format: 'float' });
    expect(tokens.usage.prompt_tokens).toBe(3);
    expect(norm(tokens.data[0]!.embedding)).toBeCloseTo(1, 4);
  });

  it('refuse an input longer than the context with context_length_exceeded', async () => {
    await expect(client.embeddings.create({ model: 'tiny-llama', input: 'word '.repeat(200) })).rejects.toMatchObject({
      status: 400,
      code: 'context_length_exceeded',
      param: 'input',
    });
  });
});
