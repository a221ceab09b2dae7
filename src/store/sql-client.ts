export type SqlValue = string | number | null;

/** One connection's worth of SQL: statements with `?` placeholders, rows as plain objects. */
export interface SqlClient {
  query(sql: string, params?: readonly SqlValue[]): Promise<Record<string, unknown>[]>;
}

/** An engine also says which constraint an error broke, so tables can refuse with a value. */
export interface SqlEngine extends SqlClient {
  violation(error: unknown): 'unique' | 'foreign_key' | undefined;
}
