/**
 * Embedding vectors on the wire. `encoding_format: "base64"` is the base64 of the vector's
 * float32 values, little-endian, back to back: what OpenAI sends and what the official SDKs
 * (which ask for base64 by default) decode.
 */

/** The base64 of the little-endian float32 bytes of a vector. */
export function toBase64Embedding(vector: ArrayLike<number>): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let index = 0; index < vector.length; index++) bytes.writeFloatLE(vector[index]!, index * 4);
  return bytes.toString('base64');
}

/** Decodes a base64 embedding; undefined when the text is not a whole number of float32 values. */
export function fromBase64Embedding(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0) return undefined;
  const vector = new Float32Array(bytes.length / 4);
  for (let index = 0; index < vector.length; index++) vector[index] = bytes.readFloatLE(index * 4);
  return vector;
}

/** Scales a vector to unit (Euclidean) length in place; a zero vector stays as it is. */
export function normalizeInPlace(vector: Float32Array): Float32Array {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  if (norm > 0 && Number.isFinite(norm)) for (let index = 0; index < vector.length; index++) vector[index] = vector[index]! / norm;
  return vector;
}

/**
 * `dimensions`: a longer vector is cut to its first `dimensions` values and scaled back to unit
 * length, which is what OpenAI's text-embedding-3 models do (Matryoshka embeddings). A vector of
 * exactly `dimensions` values (or no `dimensions`) is returned as it is. Returns undefined when
 * the vector is shorter than `dimensions`.
 */
export function fitDimensions(vector: Float32Array, dimensions: number | undefined): Float32Array | undefined {
  if (dimensions === undefined || dimensions === vector.length) return vector;
  if (dimensions > vector.length) return undefined;
  return normalizeInPlace(vector.slice(0, dimensions));
}
