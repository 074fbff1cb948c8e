import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { TINY_TOKEN_IDS, writeTinyGguf } from '../../../test/support/tiny-gguf.js';
import type { TokenLogprob } from '../../openai/responses.js';
import { importNodeLlamaCpp } from './node-llama-cpp-module.js';
import { generateTokens, toCompletionLogprobs, type GeneratedPiece, type TokenGenerationOptions } from './token-generation.js';

const directory = mkdtempSync(join(tmpdir(), 'chatgate-token-generation-'));
let llama: Llama;
const loaded: Record<'tiny' | 'neverStops', { model: LlamaModel; context: LlamaContext; sequence: LlamaContextSequence }> = {} as never;

beforeAll(async () => {
  await writeTinyGguf(join(directory, 'tiny.gguf'), { seed: 42 });
  await writeTinyGguf(join(directory, 'never-stops.gguf'), {
    seed: 42,
    suppressInvalidUtf8: true,
    logitBias: { [TINY_TOKEN_IDS.eos]: -30, [TINY_TOKEN_IDS.imEnd]: -30 },
  });
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.warn });
  for (const [name, file] of [['tiny', 'tiny.gguf'], ['neverStops', 'never-stops.gguf']] as const) {
    const model = await llama.loadModel({ modelPath: join(directory, file), gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 256, sequences: 1, threads: 1 });
    loaded[name] = { model, context, sequence: context.getSequence() };
  }
});
afterAll(async () => {
  for (const { model, context } of Object.values(loaded)) {
    await context?.dispose();
    await model?.dispose();
  }
  await llama?.dispose();
  rmSync(directory, { recursive: true, force: true });
});

function prompt(model: LlamaModel, text = 'the answer is'): Token[] {
  return [model.tokens.bos!, ...model.tokenize(text)];
}

type Options = Partial<Omit<TokenGenerationOptions, 'sampling'>> & { sampling?: Partial<TokenGenerationOptions['sampling']> };

async function run(name: keyof typeof loaded, options: Options = {}, pieces: GeneratedPiece[] = []) {
  const { model, sequence } = loaded[name];
  await sequence.clearHistory();
  return generateTokens(sequence, model, prompt(model), {
    maxTokens: 16,
    stopTexts: [],
    topLogprobs: 0,
    signal: new AbortController().signal,
    onToken: (piece) => pieces.push(piece),
    ...options,
    sampling: { temperature: 1, seed: 7, repeatPenalty: false, ...options.sampling },
  });
}

function expectWellFormed(tokens: TokenLogprob[], top: number) {
  for (const entry of tokens) {
    expect(entry.logprob).toBeLessThanOrEqual(0);
    expect(entry.top_logprobs).toHaveLength(top);
    const logprobs = entry.top_logprobs.map((alternative) => alternative.logprob);
    expect(logprobs).toEqual([...logprobs].sort((a, b) => b - a));
    for (const alternative of entry.top_logprobs) expect(alternative.logprob).toBeLessThanOrEqual(0);
    const same = entry.top_logprobs.find((alternative) => alternative.token === entry.token);
    if (same) expect(same.logprob).toBe(entry.logprob);
    expect(entry.bytes).toEqual([...Buffer.from(entry.token, 'utf8')]);
  }
}

describe('generateTokens', () => {
  it('is deterministic with a seed, streams pieces that add up, and reports well-formed logprobs', async () => {
    const pieces: GeneratedPiece[] = [];
    const first = await run('neverStops', { topLogprobs: 3 }, pieces);
    const second = await run('neverStops', { topLogprobs: 3 });
    expect(second).toEqual(first);
    expect(first.finishReason).toBe('length');
    expect(first.completionTokens).toBe(16);
    expect(first.tokens).toHaveLength(16);
    expect(first.promptTokens).toBe(prompt(loaded.neverStops.model).length);
    expect(first.tokens.map((entry) => entry.token).join('')).toBe(first.text);
    expectWellFormed(first.tokens, 3);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.map((piece) => piece.text).join('')).toBe(first.text);
    expect(pieces.flatMap((piece) => piece.logprobs)).toEqual(first.tokens);
    const other = await run('neverStops', { topLogprobs: 3, sampling: { seed: 8 } });
    expect(other.text).not.toBe(first.text);
  });

  it('reports the same logprobs with or without alternatives (confidence vs probabilities)', async () => {
    const without = await run('neverStops', { topLogprobs: 0 });
    const withTop = await run('neverStops', { topLogprobs: 20 });
    expect(without.text).toBe(withTop.text);
    expectWellFormed(without.tokens, 0);
    expectWellFormed(withTop.tokens, 20);
    without.tokens.forEach((entry, index) => expect(entry.logprob).toBeCloseTo(withTop.tokens[index]!.logprob, 5));
  });

  it('picks the top alternative every time at temperature 0 (greedy)', async () => {
    const result = await run('neverStops', { topLogprobs: 5, sampling: { temperature: 0 } });
    expect(result.tokens).toHaveLength(16);
    for (const entry of result.tokens) {
      expect(entry.top_logprobs[0]?.token).toBe(entry.token);
      expect(entry.top_logprobs[0]?.logprob).toBe(entry.logprob);
    }
    const again = await run('neverStops', { topLogprobs: 5, sampling: { temperature: 0, seed: 99 } });
    expect(again.text).toBe(result.text);
  });

  it('reports temperature-independent logprobs (the model distribution)', async () => {
    const first = async (temperature: number) => (await run('neverStops', { topLogprobs: 10, maxTokens: 1, sampling: { temperature } })).tokens[0]!;
    const greedy = await first(0);
    for (const temperature of [0.5, 1, 1.7]) {
      const entry = await first(temperature);
      expect(entry.top_logprobs.map((alternative) => alternative.token)).toEqual(greedy.top_logprobs.map((alternative) => alternative.token));
      entry.top_logprobs.forEach((alternative, index) => expect(alternative.logprob).toBeCloseTo(greedy.top_logprobs[index]!.logprob, 4));
    }
  });

  it('cuts at a stop text: finish stop, text and streamed text without it, entries inside it dropped', async () => {
    const free = await run('neverStops', { maxTokens: 30 });
    const stop = free.text.slice(10, 12);
    expect(stop).toHaveLength(2);
    const cut = free.text.indexOf(stop);
    const pieces: GeneratedPiece[] = [];
    const stopped = await run('neverStops', { maxTokens: 30, stopTexts: ['', stop] }, pieces);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, cut));
    expect(pieces.map((piece) => piece.text).join('')).toBe(stopped.text);
    for (const piece of pieces) expect(piece.text).not.toContain(stop);
    expect(pieces.flatMap((piece) => piece.logprobs)).toEqual(stopped.tokens);
    // Entries: the tokens that contribute to the text, no more.
    const joined = stopped.tokens.map((entry) => entry.token).join('');
    expect(joined.startsWith(stopped.text)).toBe(true);
    expect(joined.length - (stopped.tokens.at(-1)?.token.length ?? 0)).toBeLessThan(Math.max(stopped.text.length, 1));
    expect(stopped.tokens).toEqual(free.tokens.slice(0, stopped.tokens.length));
    // Sampled tokens count, including the ones of the stop text.
    expect(stopped.completionTokens).toBeGreaterThanOrEqual(stopped.tokens.length);
    expect(stopped.completionTokens).toBeLessThanOrEqual(30);
  });

  it('finishes with stop at an end-of-generation token', async () => {
    // The tiny model (no bias) ends by itself with some seed within a few dozen tokens; search for one.
    let found = false;
    for (let seed = 1; seed <= 30 && !found; seed++) {
      const result = await run('tiny', { maxTokens: 40, sampling: { seed } });
      if (result.finishReason === 'stop') {
        found = true;
        expect(result.completionTokens).toBe(result.tokens.length + 1);
      }
    }
    expect(found).toBe(true);
  });

  it('finishes with length at maxTokens, and maxTokens 0 samples nothing', async () => {
    const result = await run('neverStops', { maxTokens: 5 });
    expect(result.finishReason).toBe('length');
    expect(result.completionTokens).toBe(5);
    const none = await run('neverStops', { maxTokens: 0 });
    expect(none).toMatchObject({ text: '', tokens: [], finishReason: 'length', completionTokens: 0 });
  });

  it('throws the abort reason mid-generation and leaves the sequence reusable', async () => {
    const expected = await run('neverStops', { maxTokens: 10, topLogprobs: 2 });
    const controller = new AbortController();
    const reason = new Error('client went away');
    let pieces = 0;
    await expect(
      run('neverStops', {
        maxTokens: 200,
        signal: controller.signal,
        onToken: () => {
          if (++pieces === 3) controller.abort(reason);
        },
      }),
    ).rejects.toBe(reason);
    expect(pieces).toBe(3);
    // Without clearing: the matching prompt prefix is reused, the rest erased.
    const { model, sequence } = loaded.neverStops;
    const reused = await generateTokens(sequence, model, prompt(model), {
      sampling: { temperature: 1, seed: 7, repeatPenalty: false },
      maxTokens: 10,
      stopTexts: [],
      topLogprobs: 2,
      signal: new AbortController().signal,
    });
    expect(reused.cachedPromptTokens).toBe(prompt(model).length - 1);
    // Same tokens; logprobs equal up to float noise (the KV cache was filled in other batches).
    expect(reused.text).toBe(expected.text);
    expect(reused.completionTokens).toBe(expected.completionTokens);
    expect(reused.tokens.map((entry) => entry.token)).toEqual(expected.tokens.map((entry) => entry.token));
    reused.tokens.forEach((entry, index) => expect(entry.logprob).toBeCloseTo(expected.tokens[index]!.logprob, 4));
    // An already aborted signal throws before anything is evaluated.
    const aborted = AbortSignal.abort(reason);
    await expect(run('neverStops', { signal: aborted })).rejects.toBe(reason);
  });

  it('follows a grammar: JSON that parses', async () => {
    const grammar = await llama.createGrammarForJsonSchema({
      type: 'object',
      properties: { ok: { type: 'boolean' }, n: { enum: [1, 2, 3] } },
      required: ['ok', 'n'],
      additionalProperties: false,
    } as const);
    for (const temperature of [0, 1]) {
      const pieces: GeneratedPiece[] = [];
      const result = await run('tiny', { grammar, maxTokens: 100, topLogprobs: 3, sampling: { temperature } }, pieces);
      expect(result.finishReason).toBe('stop');
      const parsed = JSON.parse(result.text) as { ok: unknown; n: unknown };
      expect(typeof parsed.ok).toBe('boolean');
      expect([1, 2, 3]).toContain(parsed.n);
      expect(pieces.map((piece) => piece.text).join('')).toBe(result.text);
      for (const entry of result.tokens) {
        expect(entry.logprob).toBeLessThanOrEqual(0);
        expect(entry.logprob).toBeGreaterThan(-9999);
        expect(entry.top_logprobs.length).toBeGreaterThan(0);
      }
    }
  });

  it('reports raw bytes for tokens that are parts of a UTF-8 character, never streaming half a character', async () => {
    const grammar = await llama.createGrammar({ grammar: 'root ::= "a€é"' });
    const pieces: GeneratedPiece[] = [];
    const result = await run('tiny', { grammar, maxTokens: 20, topLogprobs: 2 }, pieces);
    expect(result.text).toBe('a€é');
    expect(result.tokens.flatMap((entry) => entry.bytes ?? [])).toEqual([...Buffer.from('a€é', 'utf8')]);
    expect(result.tokens.length).toBe(6); // "a" + 3 bytes + 2 bytes (byte-fallback tokens)
    for (const piece of pieces) expect(piece.text).not.toContain('\uFFFD');
    expect(pieces.map((piece) => piece.text).join('')).toBe('a€é');
    expect(toCompletionLogprobs(result.tokens).text_offset).toEqual([0, 1, 1, 1, 2, 2]);
  });
});

describe('toCompletionLogprobs', () => {
  it('converts chat entries to legacy completion logprobs', () => {
    const entry = (token: string, logprob: number, top: Array<[string, number]>): TokenLogprob => ({
      token,
      logprob,
      bytes: [...Buffer.from(token, 'utf8')],
      top_logprobs: top.map(([text, value]) => ({ token: text, logprob: value, bytes: [...Buffer.from(text, 'utf8')] })),
    });
    const tokens = [entry('Hé', -0.1, [['Hé', -0.1], ['constructor', -2], ['Hé', -3]]), entry(' you', -0.5, [[' you', -0.5]])];
    const logprobs = toCompletionLogprobs(tokens, { startOffset: 4 });
    expect(logprobs).toEqual({
      tokens: ['Hé', ' you'],
      token_logprobs: [-0.1, -0.5],
      top_logprobs: [{ 'Hé': -0.1, constructor: -2 }, { ' you': -0.5 }] as Array<Record<string, number>>,
      text_offset: [4, 6],
    });
    expect(toCompletionLogprobs(tokens, { includeTop: false }).top_logprobs).toBeNull();
  });
});

describe('generateTokens: cost of probabilities', () => {
  it('measures generation with confidence only vs the full distribution', async () => {
    const { model, sequence } = loaded.neverStops;
    const tokens = 64;
    const time = async (label: string, body: () => Promise<unknown>) => {
      await body(); // warm-up
      const start = performance.now();
      const rounds = 3;
      for (let round = 0; round < rounds; round++) await body();
      const perToken = (performance.now() - start) / rounds / tokens;
      console.log(`${label}: ${perToken.toFixed(3)} ms/token`);
      return perToken;
    };
    const plain = await time('sequence.evaluate, no metadata', async () => {
      await sequence.clearHistory();
      let count = 0;
      for await (const token of sequence.evaluate(prompt(model), { temperature: 1, topK: 0, topP: 1, seed: 7 })) {
        expect(token).toBeTypeOf('number');
        if (++count >= tokens) break;
      }
    });
    const confidence = await time('generateTokens, topLogprobs 0 (confidence)', () => run('neverStops', { maxTokens: tokens }));
    const full = await time('generateTokens, topLogprobs 20 (probabilities)', () => run('neverStops', { maxTokens: tokens, topLogprobs: 20 }));
    const tempered = await time('generateTokens, topLogprobs 0 at temperature 0.7 (probabilities)', () =>
      run('neverStops', { maxTokens: tokens, sampling: { temperature: 0.7 } }),
    );
    expect(Math.min(plain, confidence, full, tempered)).toBeGreaterThan(0);
  }, 120_000);
});
