import type { ResponseStore, StoreStats } from './response-store.js';

interface Entry {
  value: string;
  expiresAt: number;
  bytes: number;
}

/**
 * A least-recently-used store within a byte budget, for one gateway process. A Map keeps its
 * insertion order, so re-inserting an entry on every read makes the first one the least recently
 * used: eviction takes from the front. An entry's size is the UTF-8 length of its key and value;
 * the JavaScript objects around them are not counted.
 */
export class MemoryStore implements ResponseStore {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private evictions = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<string | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) {
      this.bytes -= entry.bytes;
      return undefined;
    }
    this.entries.set(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, expiresAt: number): Promise<void> {
    this.remove(key);
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(value);
    // An entry larger than the whole budget would evict everything and still not fit.
    if (bytes > this.maxBytes || expiresAt <= this.now()) return;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes + bytes <= this.maxBytes) break;
      this.remove(oldest);
      if (entry.expiresAt > this.now()) this.evictions++;
    }
    this.entries.set(key, { value, expiresAt, bytes });
    this.bytes += bytes;
  }

  async delete(key: string): Promise<void> {
    this.remove(key);
  }

  stats(): StoreStats {
    return { entries: this.entries.size, bytes: this.bytes, evictions: this.evictions };
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
