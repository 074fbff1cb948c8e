/**
 * The GGUF format's tables (v2/v3): magic, metadata value types, the ggml tensor types this
 * project reads or writes, and their sizes. Shared by the reader, the writer and the summary.
 */

export const GGUF_MAGIC = 'GGUF';

/** The alignment of the data section and of each tensor when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

export const GGUF_VALUE_TYPE = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;

export type GgufScalar = number | bigint | string | boolean;
export type GgufValue = GgufScalar | GgufScalar[];

export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

/** Bytes that a tensor of `count` elements of `type` takes. */
export function ggmlTensorBytes(type: number, count: number): number {
  switch (type) {
    case GGML_TYPE.F32: return count * 4;
    case GGML_TYPE.F16: return count * 2;
    case GGML_TYPE.Q8_0:
      if (count % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 tensor of ${count} elements is not a whole number of blocks`);
      return (count / Q8_0_BLOCK) * Q8_0_BYTES;
    default: throw new Error(`unsupported ggml tensor type ${type} (the trainer reads F32, F16 and Q8_0)`);
  }
}

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A float32 → float16-bits converter (rounding to nearest even), with its own scratch buffers so a loop allocates nothing per value. */
export function halfEncoder(): (value: number) => number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  return (value) => {
    f32[0] = value;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
    const e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
      if (e < -10) return sign;
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      return sign | half;
    }
    let half = sign | (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    return half;
  };
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
