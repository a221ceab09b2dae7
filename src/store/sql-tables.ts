import type { Budget, ControlStore, KeyRecord, Org, Table, Team } from './control-store.js';
import type { SqlEngine, SqlValue } from './sql-client.js';

interface TableSpec<Row> {
  table: string;
  /** Every field of a row, in column order; the column is the field in snake_case. */
  fields: readonly (keyof Row & string)[];
  booleans?: readonly (keyof Row & string)[];
  json?: readonly (keyof Row & string)[];
}

const snake = (field: string): string => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** One table on one engine: the SQL is the same on both; only constraint errors differ. */
function sqlTable<Row extends { id: string }, Filter extends keyof Row>(
  engine: SqlEngine,
  spec: TableSpec<Row>,
): Table<Row, Filter> {
  const known = new Set<string>(spec.fields);
  const columns = spec.fields.map(snake).join(', ');
  const booleans = new Set<string>(spec.booleans);
  const json = new Set<string>(spec.json);

  const encode = (field: string, value: unknown): SqlValue => {
    if (!known.has(field)) throw new Error(`${spec.table} has no field "${field}"`);
    if (value === null || value === undefined) return null;
    if (json.has(field)) return JSON.stringify(value);
    if (booleans.has(field)) return value ? 1 : 0;
    return value as SqlValue;
  };
  const decode = (row: Record<string, unknown>): Row => {
    const out: Record<string, unknown> = {};
    for (const field of spec.fields) {
      const value = row[snake(field)] ?? null;
      if (value === null) out[field] = null;
      else if (json.has(field)) out[field] = JSON.parse(String(value));
      else if (booleans.has(field)) out[field] = Number(value) === 1;
      else out[field] = value;
    }
    return out as Row;
  };
  /** The given fields only: `undefined` means "not given", `null` is a value. */
  const given = (values: object): [string, unknown][] =>
    Object.entries(values).filter(([, value]) => value !== undefined);

  const get = async (id: string): Promise<Row | undefined> => {
    const [row] = await engine.query(`SELECT ${columns} FROM ${spec.table} WHERE id = ?`, [id]);
    return row ? decode(row) : undefined;
  };

  return {
    async insert(row) {
      const entries = given(row);
      try {
        const [inserted] = await engine.query(
          `INSERT INTO ${spec.table} (${entries.map(([f]) => snake(f)).join(', ')})
           VALUES (${entries.map(() => '?').join(', ')}) RETURNING ${columns}`,
          entries.map(([f, v]) => encode(f, v)),
        );
        return decode(inserted as Record<string, unknown>);
      } catch (error) {
        const violation = engine.violation(error);
        if (violation === 'unique') return 'conflict';
        if (violation === 'foreign_key') return 'dangling';
        throw error;
      }
    },
    get,
    async list(where = {}) {
      const entries = given(where);
      const clauses = entries.map(([f, v]) => (v === null ? `${snake(f)} IS NULL` : `${snake(f)} = ?`));
      const params = entries.filter(([, v]) => v !== null).map(([f, v]) => encode(f, v));
      const rows = await engine.query(
        `SELECT ${columns} FROM ${spec.table}${clauses.length > 0 ? ` WHERE ${clauses.join(' AND ')}` : ''}
         ORDER BY created_at, id`,
        params,
      );
      return rows.map(decode);
    },
    async update(id, change) {
      const entries = given(change).filter(([f]) => f !== 'id');
      if (entries.length === 0) return (await get(id)) ?? 'missing';
      try {
        const [row] = await engine.query(
          `UPDATE ${spec.table} SET ${entries.map(([f]) => `${snake(f)} = ?`).join(', ')}
           WHERE id = ? RETURNING ${columns}`,
          [...entries.map(([f, v]) => encode(f, v)), id],
        );
        return row ? decode(row) : 'missing';
      } catch (error) {
        const violation = engine.violation(error);
        if (violation === 'unique') return 'conflict';
        if (violation === 'foreign_key') return 'dangling';
        throw error;
      }
    },
    async delete(id) {
      try {
        const rows = await engine.query(`DELETE FROM ${spec.table} WHERE id = ? RETURNING id`, [id]);
        return rows.length > 0 ? 'deleted' : 'missing';
      } catch (error) {
        if (engine.violation(error) === 'foreign_key') return 'in_use';
        throw error;
      }
    },
  };
}

/** The control store's four tables over one engine (schema: migrations.ts). */
export function controlTables(engine: SqlEngine): Pick<ControlStore, 'orgs' | 'teams' | 'keys' | 'budgets'> {
  return {
    orgs: sqlTable<Org, 'name'>(engine, { table: 'orgs', fields: ['id', 'name', 'createdAt'] }),
    teams: sqlTable<Team, 'orgId' | 'name'>(engine, {
      table: 'teams',
      fields: ['id', 'orgId', 'name', 'createdAt'],
    }),
    keys: sqlTable<KeyRecord, 'orgId' | 'teamId' | 'digest'>(engine, {
      table: 'api_keys',
      fields: [
        'id',
        'name',
        'orgId',
        'teamId',
        'digest',
        'prefix',
        'admin',
        'routes',
        'priority',
        'tags',
        'createdAt',
        'expiresAt',
        'revokedAt',
        'rotatedAt',
      ],
      booleans: ['admin'],
      json: ['routes', 'tags'],
    }),
    budgets: sqlTable<Budget, 'name' | 'scope' | 'scopeName'>(engine, {
      table: 'budgets',
      fields: [
        'id',
        'name',
        'scope',
        'scopeName',
        'period',
        'limitUsd',
        'limitTokens',
        'softLimitPct',
        'webhook',
        'createdAt',
        'updatedAt',
      ],
    }),
  };
}
