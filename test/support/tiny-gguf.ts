/**
 * Synthetic GGUF models for tests and benchmarks (the bench/ scripts import the build of
 * `npm run build:support`, build/test/support/tiny-gguf.js).
 *
 * Writes a random-weight `llama`-architecture GGUF model (by default tiny, ~0.6 MB; the
 * size options make it as large as wanted: a ~40M-parameter f16 model takes ~3-4 s) with an SPM
 * tokenizer with byte fallback and a ChatML chat template. It loads in node-llama-cpp and
 * generates gibberish, deterministically for a given seed. A TypeScript port of the writer
 * of the llama.cpp feasibility spike; same bytes for the same options.
 *
 * `logitBias` bakes a per-token bias into the output layer, e.g. make the model stop at once
 * (`{ [TINY_TOKEN_IDS.eos]: 30, [TINY_TOKEN_IDS.imEnd]: 30 }`) or never (`-30`).
 *
 * Vocab (398 tokens): 0 <unk>, 1 <s> (BOS), 2 </s> (EOS), 3 <|im_start|>, 4 <|im_end|>,
 * 5..260 <0x00>..<0xFF> (byte fallback), 261 "▁", printable ASCII, prefixes of a few words.
 */
import { writeFile } from 'node:fs/promises';
import { GGML_TYPE, GGUF_VALUE_TYPE as GGUF_TYPE, halfEncoder, LITTLE_ENDIAN } from '../../src/gguf/format.js';
import { encodeGgufFile, float32Bytes, type GgufEncodedTensor, type GgufMetadataEntry, type GgufWriteScalar } from '../../src/gguf/writer.js';
import { mulberry32 } from '../../src/util/seeded-random.js';

const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
const ALIGNMENT = 32;

/** ChatML, as understood by llama.cpp and node-llama-cpp (which recognises it as ChatML). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  '{% endfor %}' +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Ids of the special tokens of the tiny vocabulary. */
export const TINY_TOKEN_IDS = { unk: 0, bos: 1, eos: 2, imStart: 3, imEnd: 4 } as const;

export interface TinyGgufOptions {
  seed?: number;
  /** f16 halves the file; norms stay f32. */
  tensorType?: 'f32' | 'f16';
  contextLength?: number;
  embeddingLength?: number;
  blockCount?: number;
  feedForwardLength?: number;
  headCount?: number;
  headCountKv?: number;
  /** Weight std multiplier (matrices use initStd/sqrt(fan_in)). */
  initStd?: number;
  /** Biases invalid-UTF-8 bytes, control bytes and <unk>/<s>/<|im_start|> away, so output is printable. */
  suppressInvalidUtf8?: boolean;
  /** Extra per-token-id logit bias (approx. logit units). */
  logitBias?: Record<number, number>;
  name?: string;
  chatTemplate?: string;
  /**
   * Extra vocabulary pieces appended after the built-in ones (ids from TINY_BASE_VOCAB_SIZE
   * on, in order): with a logit bias, a test can make the model emit a whole piece of
   * syntax (e.g. a chat template's function-call prefix) as one token.
   */
  extraTokens?: string[];
}

function makeNormal(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

const kv = {
  str: (key: string, value: string): GgufMetadataEntry => ({ key, type: GGUF_TYPE.STRING, value }),
  u32: (key: string, value: number): GgufMetadataEntry => ({ key, type: GGUF_TYPE.UINT32, value }),
  f32: (key: string, value: number): GgufMetadataEntry => ({ key, type: GGUF_TYPE.FLOAT32, value }),
  bool: (key: string, value: boolean): GgufMetadataEntry => ({ key, type: GGUF_TYPE.BOOL, value }),
  arr: (key: string, elemType: number, value: GgufWriteScalar[]): GgufMetadataEntry => ({ key, type: GGUF_TYPE.ARRAY, elemType, value }),
};

export interface TinyVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  byteIds: number[];
}

export function buildTinyVocab(extraTokens: readonly string[] = []): TinyVocab {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (text: string, type: number, score = 0): number => {
    tokens.push(text);
    types.push(type);
    scores.push(score);
    return tokens.length - 1;
  };
  add('<unk>', TOKEN_TYPE.UNKNOWN);
  add('<s>', TOKEN_TYPE.CONTROL);
  add('</s>', TOKEN_TYPE.CONTROL);
  add('<|im_start|>', TOKEN_TYPE.CONTROL);
  add('<|im_end|>', TOKEN_TYPE.CONTROL);
  const byteIds: number[] = [];
  for (let b = 0; b < 256; b++) byteIds.push(add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, TOKEN_TYPE.BYTE));
  add('\u2581', TOKEN_TYPE.NORMAL, -1);
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c), TOKEN_TYPE.NORMAL, -2);
  // SPM merges only adjacent pieces whose concatenation is in the vocab: add every prefix.
  const words = ['\u2581the', '\u2581hello', '\u2581world', '\u2581yes', '\u2581no', '\u2581is', '\u2581of', '\u2581and', '\u2581to', '\u2581answer', '\u2581user', '\u2581assistant'];
  const seen = new Set(tokens);
  for (const word of words) {
    for (let length = 2; length <= word.length; length++) {
      const piece = word.slice(0, length);
      if (!seen.has(piece)) {
        seen.add(piece);
        add(piece, TOKEN_TYPE.NORMAL, -1 + length * 0.01);
      }
    }
  }
  for (const piece of extraTokens) add(piece, TOKEN_TYPE.NORMAL, 0);
  return { tokens, scores, types, byteIds };
}

/** How many tokens the built-in vocabulary has: the id of the first of `extraTokens`. */
export const TINY_BASE_VOCAB_SIZE = buildTinyVocab().tokens.length;


/** The GGUF file's bytes. */
export function buildTinyGguf(options: TinyGgufOptions = {}): Buffer {
  const {
    seed = 1234, tensorType = 'f32', contextLength = 256, embeddingLength = 64, blockCount = 2, feedForwardLength = 128,
    headCount = 4, headCountKv = 4, initStd = 1, name = 'chatgate-tiny-test', chatTemplate = CHATML_TEMPLATE,
    suppressInvalidUtf8 = true, logitBias = {}, extraTokens = [],
  } = options;
  if (embeddingLength % headCount !== 0) throw new Error('embeddingLength must be divisible by headCount');
  const headDim = embeddingLength / headCount;
  const nEmbdKv = headDim * headCountKv;
  const vocab = buildTinyVocab(extraTokens);
  const nVocab = vocab.tokens.length;
  const ids = TINY_TOKEN_IDS;

  const metadata: GgufMetadataEntry[] = [
    kv.str('general.architecture', 'llama'),
    kv.str('general.name', name),
    kv.u32('general.alignment', ALIGNMENT),
    kv.u32('general.file_type', tensorType === 'f16' ? 1 : 0),
    kv.u32('llama.context_length', contextLength),
    kv.u32('llama.embedding_length', embeddingLength),
    kv.u32('llama.block_count', blockCount),
    kv.u32('llama.feed_forward_length', feedForwardLength),
    kv.u32('llama.attention.head_count', headCount),
    kv.u32('llama.attention.head_count_kv', headCountKv),
    kv.u32('llama.rope.dimension_count', headDim),
    kv.f32('llama.rope.freq_base', 10000),
    kv.f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    kv.u32('llama.vocab_size', nVocab),
    kv.str('tokenizer.ggml.model', 'llama'),
    kv.str('tokenizer.ggml.pre', 'default'),
    kv.arr('tokenizer.ggml.tokens', GGUF_TYPE.STRING, vocab.tokens),
    kv.arr('tokenizer.ggml.scores', GGUF_TYPE.FLOAT32, vocab.scores),
    kv.arr('tokenizer.ggml.token_type', GGUF_TYPE.INT32, vocab.types),
    kv.u32('tokenizer.ggml.bos_token_id', ids.bos),
    kv.u32('tokenizer.ggml.eos_token_id', ids.eos),
    kv.u32('tokenizer.ggml.unknown_token_id', ids.unk),
    kv.u32('tokenizer.ggml.padding_token_id', ids.unk),
    kv.bool('tokenizer.ggml.add_bos_token', true),
    kv.bool('tokenizer.ggml.add_eos_token', false),
    kv.str('tokenizer.chat_template', chatTemplate),
  ];

  // Shapes are GGUF-style: ne[0] (input features, contiguous) first, then ne[1] (outputs).
  const normal = makeNormal(mulberry32(seed));
  const tensors: GgufEncodedTensor[] = [];
  const toHalf = halfEncoder();
  const addTensor = (tensorName: string, ne: number[], init: (index: number) => number, forceF32 = false): void => {
    const count = ne.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = init(i);
    const type = tensorType === 'f16' && !forceF32 ? GGML_TYPE.F16 : GGML_TYPE.F32;
    let data: Buffer;
    if (type === GGML_TYPE.F32) data = LITTLE_ENDIAN ? Buffer.from(values.buffer) : float32Bytes(values);
    else {
      data = Buffer.alloc(count * 2);
      if (LITTLE_ENDIAN) {
        // A typed view is much faster than writeUInt16LE per value (tens of millions of them).
        const halves = new Uint16Array(data.buffer, data.byteOffset, count);
        for (let i = 0; i < count; i++) halves[i] = toHalf(values[i]!);
      } else {
        for (let i = 0; i < count; i++) data.writeUInt16LE(toHalf(values[i]!), i * 2);
      }
    }
    tensors.push({ name: tensorName, ne, type, data });
  };
  const ones = (): number => 1;
  const randomScaled = (fanIn: number) => {
    const scale = Math.sqrt(fanIn);
    return (): number => (normal() * initStd) / scale;
  };

  // Logit bias without an output bias: hidden dim 0 is a constant 1 in every token embedding
  // and no layer writes to it, so after the final RMSNorm h[0] > 0 and output.weight[token][0]
  // acts as a per-token bias.
  const bias = new Float32Array(nVocab);
  if (suppressInvalidUtf8) {
    for (const id of [ids.unk, ids.bos, ids.imStart]) bias[id] = -60;
    for (let b = 0; b < 256; b++) {
      if (b >= 0x80 || (b < 0x20 && b !== 0x09 && b !== 0x0a) || b === 0x7f) bias[vocab.byteIds[b]!] = -60;
    }
  }
  for (const [id, value] of Object.entries(logitBias)) bias[Number(id)] = bias[Number(id)]! + value * 2;
  const biasDim = 0;
  addTensor('token_embd.weight', [embeddingLength, nVocab], (i) => (i % embeddingLength === biasDim ? 1 : normal() * initStd));
  addTensor('output_norm.weight', [embeddingLength], ones, true);
  const outRandom = randomScaled(embeddingLength);
  addTensor('output.weight', [embeddingLength, nVocab], (i) =>
    i % embeddingLength === biasDim ? bias[Math.floor(i / embeddingLength)]! : outRandom(),
  );
  const noWriteToBiasDim = (ne0: number, init: () => number) => (i: number): number => (Math.floor(i / ne0) === biasDim ? 0 : init());
  for (let block = 0; block < blockCount; block++) {
    const p = `blk.${block}.`;
    addTensor(`${p}attn_norm.weight`, [embeddingLength], ones, true);
    addTensor(`${p}attn_q.weight`, [embeddingLength, headDim * headCount], randomScaled(embeddingLength));
    addTensor(`${p}attn_k.weight`, [embeddingLength, nEmbdKv], randomScaled(embeddingLength));
    addTensor(`${p}attn_v.weight`, [embeddingLength, nEmbdKv], randomScaled(embeddingLength));
    addTensor(`${p}attn_output.weight`, [headDim * headCount, embeddingLength], noWriteToBiasDim(headDim * headCount, randomScaled(embeddingLength)));
    addTensor(`${p}ffn_norm.weight`, [embeddingLength], ones, true);
    addTensor(`${p}ffn_gate.weight`, [embeddingLength, feedForwardLength], randomScaled(embeddingLength));
    addTensor(`${p}ffn_up.weight`, [embeddingLength, feedForwardLength], randomScaled(embeddingLength));
    addTensor(`${p}ffn_down.weight`, [feedForwardLength, embeddingLength], noWriteToBiasDim(feedForwardLength, randomScaled(feedForwardLength)));
  }

  return encodeGgufFile(metadata, tensors);
}

/** Writes the tiny model to `path`. */
export async function writeTinyGguf(path: string, options: TinyGgufOptions = {}): Promise<{ path: string; bytes: number }> {
  const buffer = buildTinyGguf(options);
  await writeFile(path, buffer);
  return { path, bytes: buffer.length };
}
