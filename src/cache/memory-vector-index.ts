import { similarity, type VectorIndex } from './vector-index.js';

interface Indexed {
  scope: string;
  key: string;
  vector: Float32Array;
  expiresAt: number;
}

/**
 * Vectors in this process: at most `maxVectors` in all scopes together, the oldest dropped first
 * (a Map keeps insertion order). Memory is about `maxVectors × dimensions × 4` bytes.
 */
export class MemoryVectorIndex implements VectorIndex {
  private readonly vectors = new Map<string, Indexed>();
  private readonly scopes = new Map<string, Set<string>>();

  constructor(
    private readonly maxVectors: number,
    private readonly now: () => number = Date.now,
  ) {}

  async add(scope: string, key: string, vector: Float32Array, expiresAt: number): Promise<void> {
    const id = vectorId(scope, key);
    this.drop(id);
    this.vectors.set(id, { scope, key, vector, expiresAt });
    let members = this.scopes.get(scope);
    if (!members) {
      members = new Set();
      this.scopes.set(scope, members);
    }
    members.add(id);
    for (const oldest of this.vectors.keys()) {
      if (this.vectors.size <= this.maxVectors) break;
      this.drop(oldest);
    }
  }

  async nearest(
    scope: string,
    vector: Float32Array,
  ): Promise<{ key: string; similarity: number } | undefined> {
    const members = this.scopes.get(scope);
    if (!members) return undefined;
    const now = this.now();
    let best: { key: string; similarity: number } | undefined;
    for (const id of members) {
      const indexed = this.vectors.get(id) as Indexed;
      if (indexed.expiresAt <= now) {
        this.drop(id);
        continue;
      }
      const score = similarity(vector, indexed.vector);
      if (!best || score > best.similarity) best = { key: indexed.key, similarity: score };
    }
    return best;
  }

  async remove(scope: string, key: string): Promise<void> {
    this.drop(vectorId(scope, key));
  }

  get size(): number {
    return this.vectors.size;
  }

  private drop(id: string): void {
    const indexed = this.vectors.get(id);
    if (!indexed) return;
    this.vectors.delete(id);
    const members = this.scopes.get(indexed.scope);
    members?.delete(id);
    if (members?.size === 0) this.scopes.delete(indexed.scope);
  }
}

function vectorId(scope: string, key: string): string {
  return `${scope}\u0000${key}`;
}
