import { describe, expect, it } from 'vitest';
import {
  type AggregateSpec,
  aggregateStatement,
  type CompileContext,
  rollupTiers,
} from '../../../src/analytics/compile.js';
import { parseDimension } from '../../../src/analytics/dimensions.js';
import type { Selection } from '../../../src/analytics/query.js';
import { clickhouseDialect, duckdbDialect } from '../../../src/analytics/sql-dialect.js';
import { bindParameters } from '../../../src/events/clickhouse-query.js';
import { columnsAddedInVersion2, eventColumns } from '../../../src/events/event-columns.js';

const v2Columns = new Set(eventColumns.map((col) => col.name));
const duckdb: CompileContext = { dialect: duckdbDialect(), eventColumns: v2Columns };
const clickhouse: CompileContext = { dialect: clickhouseDialect('sluice'), eventColumns: v2Columns };

const selection: Selection = { fromMs: 1_000_000, toMs: 2_000_000, filters: [], errorsOnly: false };

function spec(overrides: Partial<AggregateSpec> = {}): AggregateSpec {
  return {
    selection,
    scope: { kind: 'all' },
    sums: ['requests'],
    quantiles: [],
    source: { kind: 'raw' },
    ...overrides,
  };
}

function dimension(name: string) {
  const parsed = parseDimension(name);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

const hostile = "x' OR 1 = 1) --; DROP TABLE events";

describe('the analytics query compiler', () => {
  it('always filters on the caller’s key, taken from the scope and never from the filters', () => {
    const byName = aggregateStatement(
      duckdb,
      spec({ scope: { kind: 'key', keyId: null, keyName: 'team-a' } }),
    );
    expect(byName.sql).toMatch(/key_name = \$p\d+/);
    expect(Object.values(byName.params ?? {})).toContain('team-a');
    const byId = aggregateStatement(
      duckdb,
      spec({ scope: { kind: 'key', keyId: 'key_123', keyName: 'team-a' } }),
    );
    expect(byId.sql).toMatch(/key_id = \$p\d+/);
    expect(byId.sql).not.toMatch(/key_name =/);
    // A key with neither an id nor a name sees nothing rather than everything.
    expect(
      aggregateStatement(duckdb, spec({ scope: { kind: 'key', keyId: null, keyName: null } })).sql,
    ).toContain('1 = 0');
    expect(aggregateStatement(duckdb, spec()).sql).not.toMatch(/key_name|key_id/);
  });

  it('keeps the tenant filter on every part of a rollup query: rollups and raw events before and after', () => {
    const statement = aggregateStatement(
      duckdb,
      spec({
        scope: { kind: 'key', keyId: null, keyName: 'team-a' },
        source: { kind: 'rollup', tier: rollupTiers[0], startMs: 1_200_000, endMs: 1_800_000 },
      }),
    );
    expect(statement.sql).toContain('UNION ALL');
    expect(statement.sql.match(/key_name = \$p\d+/g)).toHaveLength(3);
  });

  it('never writes a client’s value into the SQL text', () => {
    const filters = [
      { dimension: dimension('route'), values: [hostile] },
      { dimension: dimension('tag.feature'), values: [hostile] },
    ];
    for (const ctx of [duckdb, clickhouse]) {
      const statement = aggregateStatement(
        ctx,
        spec({
          selection: { ...selection, filters },
          scope: { kind: 'key', keyId: null, keyName: hostile },
          groupBy: dimension('model'),
          groups: [hostile, null],
        }),
      );
      expect(statement.sql).not.toContain(hostile);
      expect(statement.sql).not.toContain('DROP');
      expect(Object.values(statement.params ?? {}).filter((value) => value === hostile)).toHaveLength(4);
    }
  });

  it('binds ClickHouse values as hex, so none can end its literal', () => {
    const bound = bindParameters('SELECT {a:String}, {b:Int64}, {c:Float64}', { a: hostile, b: 42, c: 0.5 });
    expect(bound).toBe(
      `SELECT unhex('${Buffer.from(hostile).toString('hex')}'), toInt64(42), toFloat64(0.5)`,
    );
    expect(() => bindParameters('SELECT {a:Int64}', { a: '1 OR 1' })).toThrow(/integer/);
    expect(() => bindParameters('SELECT {a:Float64}', { a: Number.NaN })).toThrow(/finite/);
    expect(() => bindParameters('SELECT {missing:String}', {})).toThrow(/no value/);
  });

  it('accepts only dimensions on its allow-list', () => {
    expect(parseDimension('route; DROP TABLE events')).toMatch(/unknown dimension/);
    expect(parseDimension('key_name')).toMatch(/unknown dimension/);
    expect(parseDimension('tag.a"b')).toMatch(/tag names/);
    expect(parseDimension('tag.feature')).toMatchObject({ kind: 'tag', tag: 'feature' });
    expect(parseDimension('key')).toMatchObject({ kind: 'column', column: 'key_name' });
  });

  it('reads a column the table does not have yet (a version 1 table) as NULL', () => {
    const added = new Set(columnsAddedInVersion2.map((col) => col.name));
    const v1: CompileContext = {
      dialect: duckdbDialect(),
      eventColumns: new Set(eventColumns.map((col) => col.name).filter((name) => !added.has(name))),
    };
    const statement = aggregateStatement(
      v1,
      spec({ groupBy: dimension('team'), sums: ['requests', 'cost_usd'] }),
    );
    expect(statement.sql).toContain('CAST(NULL AS VARCHAR) AS g');
    expect(statement.sql).toContain('sum(CAST(NULL AS DOUBLE))');
  });

  it('buckets time with integer division, which ClickHouse 18.16 has (toStartOfInterval it has not)', () => {
    const statement = aggregateStatement(
      clickhouse,
      spec({ stepMs: 60_000, quantiles: [{ timing: 'latency', q: 0.99 }] }),
    );
    expect(statement.sql).toContain('(intDiv(time_ms, 60000) * 60000) AS t');
    expect(statement.sql).toContain('quantilesTDigest(0.99)(timings_total_ms)');
    expect(statement.sql).toContain('FROM sluice.events FINAL');
    expect(statement.sql).not.toContain('toStartOfInterval');
  });
});
