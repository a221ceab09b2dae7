/**
 * The control plane's records (ARCHITECTURE.md, "Storage"): tenants, virtual keys and budget
 * definitions. One interface, two engines that pass one contract suite: SQLite on one machine,
 * PostgreSQL when gateways share it. Times are epoch milliseconds.
 */

export interface Org {
  id: string;
  /** Unique among orgs. */
  name: string;
  createdAt: number;
}

export interface Team {
  id: string;
  orgId: string;
  /** Unique within its org. */
  name: string;
  createdAt: number;
}

/** A virtual key. Its secret is never stored: only its digest and the few characters shown in lists. */
export interface KeyRecord {
  id: string;
  /** Unique among the live (unrevoked) keys of its team, or of its org, or of keys with neither. */
  name: string;
  orgId: string | null;
  /** A key of a team belongs to the team's org too (orgId is set to it). */
  teamId: string | null;
  /** SHA-256 of the secret, hex. */
  digest: string;
  /** The secret's first characters, to recognise it ("sk-sluice-ab12"). */
  prefix: string;
  /** May use the admin API. */
  admin: boolean;
  /** Routes (or "provider/model") the key may call; null: all. */
  routes: string[] | null;
  /** Default flow-control priority of its requests (critical, high, normal, low, batch). */
  priority: string;
  tags: Record<string, string>;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  rotatedAt: number | null;
}

/**
 * A spending or token limit over a period, for an org, a team or a key (enforced by policy/).
 * Its scope is a name, as in sluice.yaml's budgets: the subject of a request is known by its
 * key, team and org names, and config budgets and store budgets count the same spend.
 */
export interface Budget {
  id: string;
  /** Unique among budgets; named in 402 errors, metrics and webhooks. */
  name: string;
  scope: 'org' | 'team' | 'key';
  /** The name of the org, team or key. */
  scopeName: string;
  period: 'day' | 'month' | 'total';
  limitUsd: number | null;
  limitTokens: number | null;
  /** Percentage of the limit at which a warning is raised (1–100); null: none. */
  softLimitPct: number | null;
  /** Receives a POST when the soft limit is crossed; null: none. */
  webhook: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * One kind of record. Refusals are values: `conflict` (a unique name is taken), `dangling` (a
 * referenced org or team does not exist), `missing` (no such id), `in_use` (others refer to it).
 */
export interface Table<Row extends { id: string }, Filter extends keyof Row> {
  insert(row: Row): Promise<Row | 'conflict' | 'dangling'>;
  get(id: string): Promise<Row | undefined>;
  /** Rows equal to `where` on every field given (null matches null), oldest first. */
  list(where?: Partial<Pick<Row, Filter>>): Promise<Row[]>;
  update(id: string, change: Partial<Omit<Row, 'id'>>): Promise<Row | 'missing' | 'conflict' | 'dangling'>;
  delete(id: string): Promise<'deleted' | 'missing' | 'in_use'>;
}

export interface ControlStore {
  /** "sqlite .sluice/control.db", "postgres 10.0.0.5:5432/sluice": for logs, never with a password. */
  readonly description: string;
  readonly orgs: Table<Org, 'name'>;
  readonly teams: Table<Team, 'orgId' | 'name'>;
  readonly keys: Table<KeyRecord, 'orgId' | 'teamId' | 'digest'>;
  readonly budgets: Table<Budget, 'name' | 'scope' | 'scopeName'>;
  /** Connects and brings the schema up to date; safe on every start, from many nodes at once. */
  open(): Promise<void>;
  close(): Promise<void>;
}
