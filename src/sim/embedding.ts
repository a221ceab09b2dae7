import { createRng, hashSeed } from './rng.js';

/**
 * A deterministic unit vector for `text`: the normalised sum of one pseudo-random direction
 * per distinct word, so texts that share words point the same way (cosine similarity is
 * meaningful, as a semantic cache needs).
 */
export function embed(text: string, dimensions: number, seed: number): Float32Array {
  const counts = new Map<string, number>();
  for (const word of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  if (counts.size === 0) counts.set('', 1);
  const sum = new Float64Array(dimensions);
  for (const [word, count] of counts) {
    const rng = createRng(hashSeed(seed, 'embed', word));
    const weight = Math.sqrt(count);
    for (let i = 0; i < dimensions; i++) sum[i] = (sum[i] as number) + weight * (rng.next() * 2 - 1);
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += (sum[i] as number) ** 2;
  norm = Math.sqrt(norm) || 1;
  const vector = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = (sum[i] as number) / norm;
  return vector;
}

/** OpenAI's base64 encoding: the float32 array's little-endian bytes. */
export function vectorToBase64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}
