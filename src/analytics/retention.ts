import type { EventReader } from '../events/event-reader.js';
import { type CompileContext, rollupTiers } from './compile.js';
import { params } from './sql-dialect.js';
import { DAY_MS, floorTo } from './time-range.js';

export interface RetentionPolicy {
  /** Raw events are kept this many days; 0 keeps them forever. */
  rawDays: number;
  /** Rollup rows are kept this many days; 0 keeps them forever. */
  rollupDays: number;
}

export interface RetentionReport {
  /** Epoch ms before which rows were (or are being) deleted; null when nothing was due. */
  rawBeforeMs: number | null;
  rollupBeforeMs: number | null;
}

const READ_LIMITS = { timeoutMs: 30_000, readOnly: true };

/**
 * The cutoff for data kept `days` days, on a UTC day boundary: rows live at least `days` days
 * and go within a day after, and ClickHouse gets at most one delete mutation per table a day.
 */
export function retentionCutoff(nowMs: number, days: number): number | null {
  return days > 0 ? floorTo(nowMs - days * DAY_MS, DAY_MS) : null;
}

interface Expiry {
  table: string;
  /** A condition "older than {cutoff}" that ClickHouse can prune partitions and ranges with. */
  older: (cutoff: string) => string;
  cutoffMs: number;
}

/** Months (YYYYMM partitions) that end at or before the cutoff. */
function expiredMonths(partitions: readonly string[], cutoffMs: number): string[] {
  return partitions.filter((partition) => {
    const match = /^(\d{4})(\d{2})$/.exec(partition);
    if (!match) return false;
    const nextMonth = Date.UTC(Number(match[1]), Number(match[2]), 1);
    return nextMonth <= cutoffMs;
  });
}

/**
 * ClickHouse 18.16 has no TTL: whole months go with DROP PARTITION (instant), the rest with an
 * ALTER TABLE DELETE mutation, unless one is still running on the table.
 */
async function expireClickHouse(reader: EventReader, ctx: CompileContext, expiry: Expiry): Promise<void> {
  const d = ctx.dialect;
  const [database, table] = d.table(expiry.table).split('.') as [string, string];
  const p = params(d);
  const pending = await reader.query(
    {
      sql: `SELECT count() FROM system.mutations WHERE database = ${p.add(database, 'String')} AND table = ${p.add(table, 'String')} AND is_done = 0`,
      params: p.values,
    },
    READ_LIMITS,
  );
  if (Number(pending.rows[0]?.[0] ?? 0) > 0) return;
  const q = params(d);
  const parts = await reader.query(
    {
      sql: `SELECT DISTINCT partition FROM system.parts WHERE database = ${q.add(database, 'String')} AND table = ${q.add(table, 'String')} AND active`,
      params: q.values,
    },
    READ_LIMITS,
  );
  const months = expiredMonths(
    parts.rows.map((row) => String(row[0])),
    expiry.cutoffMs,
  );
  // A partition id is YYYYMM digits (checked above), never client input.
  await reader.execute(
    months.map((month) => ({ sql: `ALTER TABLE ${d.table(expiry.table)} DROP PARTITION ${month}` })),
  );
  const r = params(d);
  const left = await reader.query(
    {
      sql: `SELECT count() FROM ${d.table(expiry.table)} WHERE ${expiry.older(r.add(expiry.cutoffMs, 'Int64'))}`,
      params: r.values,
    },
    READ_LIMITS,
  );
  if (Number(left.rows[0]?.[0] ?? 0) === 0) return;
  const m = params(d);
  await reader.execute([
    {
      sql: `ALTER TABLE ${d.table(expiry.table)} DELETE WHERE ${expiry.older(m.add(expiry.cutoffMs, 'Int64'))}`,
      params: m.values,
    },
  ]);
}

/**
 * Deletes raw events and rollup rows past their retention. Raw events not rolled up yet by every
 * tier (at or after `rolledUpThroughMs`, the lowest watermark) are kept whatever their age, so no
 * minute is lost to both.
 */
export async function expireEvents(
  reader: EventReader,
  ctx: CompileContext,
  options: { nowMs: number; policy: RetentionPolicy; rolledUpThroughMs: number | null; rollups: boolean },
): Promise<RetentionReport> {
  let rawBeforeMs = retentionCutoff(options.nowMs, options.policy.rawDays);
  if (rawBeforeMs !== null && options.rollups) {
    if (options.rolledUpThroughMs === null || options.rolledUpThroughMs < rawBeforeMs) rawBeforeMs = null;
  }
  const rollupBeforeMs = options.rollups ? retentionCutoff(options.nowMs, options.policy.rollupDays) : null;
  const expiries: Expiry[] = [];
  if (rawBeforeMs !== null) {
    expiries.push({
      table: 'events',
      // ClickHouse: `time` is the partition and primary key column; DuckDB has only time_ms.
      older: (cutoff) =>
        ctx.dialect.engine === 'clickhouse'
          ? `time < toDateTime(intDiv(${cutoff}, 1000))`
          : `time_ms < ${cutoff}`,
      cutoffMs: rawBeforeMs,
    });
  }
  if (rollupBeforeMs !== null) {
    for (const tier of rollupTiers) {
      expiries.push({
        table: tier.table,
        older: (cutoff) => `start_ms < ${cutoff}`,
        cutoffMs: rollupBeforeMs,
      });
    }
  }
  for (const expiry of expiries) {
    if (ctx.dialect.engine === 'clickhouse') {
      await expireClickHouse(reader, ctx, expiry);
      continue;
    }
    const p = params(ctx.dialect);
    await reader.execute([
      {
        sql: `DELETE FROM ${expiry.table} WHERE ${expiry.older(p.add(expiry.cutoffMs, 'Int64'))}`,
        params: p.values,
      },
    ]);
  }
  return { rawBeforeMs, rollupBeforeMs };
}
