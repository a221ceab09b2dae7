import { type Priority, parsePriority } from '../flow/priority.js';
import { type ApiError, apiError } from '../http/api-error.js';
import type { ControlStore, KeyRecord } from '../store/control-store.js';
import type { Clock } from '../time/clock.js';
import { PeriodicReload } from './periodic-reload.js';

/** Who a virtual key speaks for; the gateway's Principal has the same shape. */
export interface KeyPrincipal {
  keyName: string;
  keyId: string;
  /** Names, as events and analytics show them; null when the key has none. */
  team: string | null;
  org: string | null;
  /** Routes this key may use; undefined means all. */
  routes?: readonly string[];
  priority: Priority;
  tags: Readonly<Record<string, string>>;
}

export interface KeyEntry {
  principal: KeyPrincipal;
  admin: boolean;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** What authentication needs from the virtual keys, on the hot path: memory only. */
export interface VirtualKeys {
  /** Keys known in any state: while there are none (and no config keys), the client API is open. */
  readonly size: number;
  /** Unrevoked keys with admin scope: with one, the admin API is usable without auth.adminKey. */
  readonly admins: number;
  /** The key with this SHA-256 (hex): its entry, or why it may no longer be used; undefined when unknown. */
  admit(digest: string): KeyEntry | ApiError | undefined;
}

export const noVirtualKeys: VirtualKeys = { size: 0, admins: 0, admit: () => undefined };

export interface TenantNames {
  team: string | null;
  org: string | null;
}

export interface KeyDirectoryOptions {
  store: ControlStore;
  /** How often to reload from the store, so keys changed on other nodes take effect here. */
  refreshMs: number;
  /** Schedules the reloads. */
  clock?: Clock;
  /** Wall-clock epoch milliseconds, for expiry. */
  now?: () => number;
  /** A reload failed (the store is down): the keys already loaded stay in force. */
  onRefreshError?: (error: unknown) => void;
}

interface Change {
  record: KeyRecord;
  names: TenantNames;
  previousDigest?: string;
}

/**
 * The virtual keys in memory, by digest: authentication never waits on the store. Changes
 * made through this node's admin API apply at once (`put`); changes from other nodes sharing
 * the store arrive with the next reload, every `refreshMs`.
 */
export class KeyDirectory implements VirtualKeys {
  private entries = new Map<string, KeyEntry>();
  private adminCount = 0;
  /** Local changes made while a reload is in flight: replayed on top of what it read. */
  private changesDuringLoad: Change[] | undefined;
  private readonly reload: PeriodicReload;
  private readonly now: () => number;

  constructor(private readonly options: KeyDirectoryOptions) {
    this.reload = new PeriodicReload({
      load: () => this.load(),
      refreshMs: options.refreshMs,
      clock: options.clock,
      onError: options.onRefreshError,
    });
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  get admins(): number {
    return this.adminCount;
  }

  admit(digest: string): KeyEntry | ApiError | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    const { keyId, keyName } = entry.principal;
    if (entry.revokedAt !== null) {
      return apiError(
        'authentication',
        401,
        `This API key (${keyId}, "${keyName}") was revoked at ${new Date(entry.revokedAt).toISOString()}: ask an admin for a new key.`,
        { code: 'revoked_api_key' },
      );
    }
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) {
      return apiError(
        'authentication',
        401,
        `This API key (${keyId}, "${keyName}") expired at ${new Date(entry.expiresAt).toISOString()}: ask an admin to extend it or for a new key.`,
        { code: 'expired_api_key' },
      );
    }
    return entry;
  }

  /** Loads every key, then reloads every `refreshMs` until `stop()`. */
  start(): Promise<void> {
    return this.reload.start();
  }

  stop(): void {
    this.reload.stop();
  }

  /** Reloads from the store. Calls during a reload share one more reload that starts after it. */
  refresh(): Promise<void> {
    return this.reload.refresh();
  }

  /** Resolves when no reload is in flight. */
  settled(): Promise<void> {
    return this.reload.settled();
  }

  /** A key this node just created or changed, in force at once; `previousDigest` is a rotated-out secret. */
  put(record: KeyRecord, names: TenantNames, previousDigest?: string): void {
    const change = { record, names, previousDigest };
    apply(this.entries, change);
    this.changesDuringLoad?.push(change);
    this.adminCount = countAdmins(this.entries);
  }

  private async load(): Promise<void> {
    const changes: Change[] = [];
    this.changesDuringLoad = changes;
    try {
      const { store } = this.options;
      const [keys, teams, orgs] = await Promise.all([
        store.keys.list(),
        store.teams.list(),
        store.orgs.list(),
      ]);
      const teamNames = new Map(teams.map((t) => [t.id, t.name]));
      const orgNames = new Map(orgs.map((o) => [o.id, o.name]));
      const next = new Map<string, KeyEntry>();
      for (const record of keys) {
        const names = {
          team: record.teamId === null ? null : (teamNames.get(record.teamId) ?? null),
          org: record.orgId === null ? null : (orgNames.get(record.orgId) ?? null),
        };
        apply(next, { record, names });
      }
      for (const change of changes) apply(next, change);
      this.entries = next;
      this.adminCount = countAdmins(next);
    } finally {
      this.changesDuringLoad = undefined;
    }
  }
}

function apply(entries: Map<string, KeyEntry>, { record, names, previousDigest }: Change): void {
  if (previousDigest !== undefined) entries.delete(previousDigest);
  entries.set(record.digest, {
    principal: {
      keyName: record.name,
      keyId: record.id,
      team: names.team,
      org: names.org,
      routes: record.routes ?? undefined,
      priority: parsePriority(record.priority) ?? 'normal',
      tags: record.tags,
    },
    admin: record.admin,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
  });
}

function countAdmins(entries: Map<string, KeyEntry>): number {
  let count = 0;
  for (const entry of entries.values()) if (entry.admin && entry.revokedAt === null) count++;
  return count;
}
