/**
 * Where cached answers live: strings under keys, each until its expiry. Two implementations pass
 * one contract suite (test/support/response-store-contract.ts): memory (one process, an LRU with a
 * byte budget) and Redis (shared by every gateway of a cluster).
 */
export interface ResponseStore {
  /** The value under `key`, unless it is absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` under `key` until `expiresAt` (epoch milliseconds by the store's clock). */
  set(key: string, value: string, expiresAt: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** What the memory store holds, for /metrics; Redis reports its own memory. */
export interface StoreStats {
  entries: number;
  bytes: number;
  /** Entries dropped to stay within the byte budget (expired ones are not counted). */
  evictions: number;
}
