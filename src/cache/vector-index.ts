/**
 * The semantic cache's index: unit vectors of past questions, each pointing at the cached entry
 * that answers it, grouped in scopes (src/cache/cache-key.ts, `semanticScope`). A lookup compares
 * a question with every live vector of its scope: brute force, exact, and bounded by a cap.
 */
export interface VectorIndex {
  /** Adds (or replaces) the vector of entry `key` in `scope`, until `expiresAt` (epoch ms). */
  add(scope: string, key: string, vector: Float32Array, expiresAt: number): Promise<void>;
  /** The live entry of `scope` most similar to `vector`, with its cosine similarity. */
  nearest(scope: string, vector: Float32Array): Promise<{ key: string; similarity: number } | undefined>;
  remove(scope: string, key: string): Promise<void>;
}

/** `values` scaled to length 1, so a dot product is the cosine similarity; undefined for a zero vector. */
export function unitVector(values: ArrayLike<number>): Float32Array | undefined {
  let norm = 0;
  for (let i = 0; i < values.length; i++) norm += (values[i] as number) ** 2;
  norm = Math.sqrt(norm);
  if (!(norm > 0) || !Number.isFinite(norm)) return undefined;
  const vector = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) vector[i] = (values[i] as number) / norm;
  return vector;
}

/** The cosine similarity of two unit vectors; -Infinity when their dimensions differ. */
export function similarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.NEGATIVE_INFINITY;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return dot;
}
