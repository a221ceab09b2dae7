/**
 * What `sluice query` prints: the API's JSON as is, or the same answer flattened into rows for
 * a terminal (aligned columns) or a spreadsheet (CSV).
 */
export type OutputFormat = 'table' | 'json' | 'csv';

export interface Rows {
  columns: string[];
  rows: unknown[][];
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    return String(Number(value.toFixed(Math.abs(value) >= 100 ? 1 : 4)));
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function renderTable({ columns, rows }: Rows): string {
  const text = rows.map((row) => row.map(cell));
  const numeric = columns.map(
    (_, i) => rows.length > 0 && rows.every((row) => row[i] === null || typeof row[i] === 'number'),
  );
  const widths = columns.map((name, i) =>
    Math.max(name.length, ...text.map((row) => (row[i] as string).length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, i) =>
        numeric[i] ? value.padStart(widths[i] as number) : value.padEnd(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  return `${[line(columns), ...text.map(line)].join('\n')}\n`;
}

function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function renderCsv({ columns, rows }: Rows): string {
  const lines = [columns, ...rows.map((row) => row.map(cell))].map((row) => row.map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

const isoTime = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString() : ms);

interface TimeseriesAnswer {
  metrics: string[];
  t: number[];
  series: { group: string | null; values: Record<string, (number | null)[]> }[];
}

/** One row per bucket (and group, when grouped), a column per metric. */
export function timeseriesRows(answer: TimeseriesAnswer, groupBy?: string): Rows {
  const columns = ['time', ...(groupBy ? [groupBy] : []), ...answer.metrics];
  const rows: unknown[][] = [];
  answer.t.forEach((t, i) => {
    for (const series of answer.series) {
      rows.push([
        isoTime(t),
        ...(groupBy ? [series.group] : []),
        ...answer.metrics.map((metric) => series.values[metric]?.[i] ?? null),
      ]);
    }
  });
  return { columns, rows };
}

export function breakdownRows(
  answer: { by: string; rows: { group: string | null; values: Record<string, number | null> }[] },
  metrics: string[],
): Rows {
  return {
    columns: [answer.by, ...metrics],
    rows: answer.rows.map((row) => [row.group, ...metrics.map((metric) => row.values[metric] ?? null)]),
  };
}

export function summaryRows(answer: { values: Record<string, number | null> }): Rows {
  return { columns: ['metric', 'value'], rows: Object.entries(answer.values) };
}

/** The columns an operator scans a request list by; --format json has everything. */
export function requestRows(answer: { data: Record<string, unknown>[] }): Rows {
  return {
    columns: [
      'time',
      'id',
      'key',
      'route',
      'target',
      'status',
      'total_ms',
      'ttft_ms',
      'tokens_in',
      'tokens_out',
    ],
    rows: answer.data.map((event) => {
      const timings = (event.timings ?? {}) as Record<string, unknown>;
      const tokens = (event.tokens ?? {}) as Record<string, unknown>;
      return [
        event.time,
        event.id,
        event.keyName,
        event.route,
        event.target,
        event.status,
        timings.totalMs,
        timings.firstTokenMs,
        tokens.input,
        tokens.output,
      ];
    }),
  };
}

/** A wide event as `field  value` lines, nested fields by dotted path. */
export function eventRows(event: Record<string, unknown>): Rows {
  const rows: unknown[][] = [];
  const walk = (value: unknown, path: string) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) walk(item, path ? `${path}.${key}` : key);
    } else {
      rows.push([path, value]);
    }
  };
  walk(event, '');
  return { columns: ['field', 'value'], rows };
}

export function sqlRows(answer: { columns: { name: string }[]; rows: unknown[][] }): Rows {
  return { columns: answer.columns.map((col) => col.name), rows: answer.rows };
}
