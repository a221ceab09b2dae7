import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatAxisTime, formatTime } from './format.js';

export interface ChartSeries {
  label: string;
  values: ReadonlyArray<number | null>;
  color: string;
  dash?: number[];
}

export interface ChartProps {
  title: string;
  /** Epoch milliseconds. */
  t: readonly number[];
  series: readonly ChartSeries[];
  /** The y axis's unit, shown as its label ("ms", "req/s"). */
  unit: string;
  /** A value as the legend and table show it, with its unit. */
  format: (value: number) => string;
  /** A y-axis tick label (default: `format`), e.g. a bare number when `unit` says what it is. */
  tick?: (value: number) => string;
  /** Bars stacked in series order, for counts per interval (the legend shows each series' own value). */
  stacked?: boolean;
  height?: number;
  /** Pins the x axis to a range (epoch ms), so a quiet period shows as a gap, not a zoom. */
  xRange?: readonly [number, number];
  /** Shown instead of the chart when no series has a value. */
  empty: ComponentChildren;
}

/** Colours that read on light and dark backgrounds; one per series, in order. */
export const palette = [
  '#3b82f6',
  '#f59e0b',
  '#ef4444',
  '#10b981',
  '#8b5cf6',
  '#ec4899',
  '#14b8a6',
  '#64748b',
];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Where each stacked bar ends: series i is drawn at the sum of series 0..i. */
function stack(series: readonly ChartSeries[]): Array<Array<number | null>> {
  const sums: Array<Array<number | null>> = [];
  series.forEach((s, i) => {
    sums.push(
      s.values.map((v, j) => {
        const below = i > 0 ? (sums[i - 1]?.[j] ?? null) : null;
        if (v === null) return below;
        return (below ?? 0) + v;
      }),
    );
  });
  return sums;
}

/** The indices of values with no value on either side: a line cannot show them, so a dot does. */
function isolatedPoints(u: uPlot, seriesIdx: number): number[] | null {
  const values = u.data[seriesIdx] ?? [];
  const isolated: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] == null) continue;
    if ((i === 0 || values[i - 1] == null) && (i === values.length - 1 || values[i + 1] == null))
      isolated.push(i);
  }
  return isolated.length > 0 ? isolated : null;
}

/** A one-line description for screen readers: each series' latest and highest value. */
export function describeChart(
  title: string,
  series: readonly ChartSeries[],
  format: (v: number) => string,
): string {
  const parts = series.map((s) => {
    const present = s.values.filter((v): v is number => v !== null);
    if (present.length === 0) return `${s.label}: no data`;
    return `${s.label}: latest ${format(present.at(-1)!)}, highest ${format(Math.max(...present))}`;
  });
  return `${title}. ${parts.join('; ')}.`;
}

/**
 * A time-series chart (uPlot): time on x, one unit on y, a legend that shows the values under
 * the cursor, and a data table of the latest points for keyboard and screen-reader users.
 */
export function Chart(props: ChartProps) {
  const {
    title,
    t,
    series,
    unit,
    format,
    tick = format,
    stacked = false,
    height = 190,
    xRange,
    empty,
  } = props;
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // Read by the x scale on every redraw: a moving range ("the last 15 minutes") needs no rebuild.
  const range = useRef(xRange);
  range.current = xRange;
  const hasData = series.some((s) => s.values.some((v) => v !== null && v !== 0));
  // A new set of series (names or kind) needs a new chart; new values only new data.
  const shape = `${stacked}|${unit}|${series.map((s) => s.label).join('|')}`;

  const data = useMemo((): uPlot.AlignedData => {
    const ys = stacked ? stack(series) : series.map((s) => [...s.values]);
    // Stacked bars are drawn tallest first, so each shorter one shows in front of it.
    return [[...t], ...(stacked ? ys.reverse() : ys)] as uPlot.AlignedData;
  }, [t, series, stacked]);
  useEffect(() => {
    const el = host.current;
    if (!el || !hasData) return;
    const ordered = stacked ? [...series].reverse() : series;
    const axisColor = cssVar('--muted', '#6b7280');
    const gridColor = cssVar('--grid', 'rgba(127,127,127,0.18)');
    const axisFont = '11px system-ui, sans-serif';
    const options: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      ms: 1,
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => (range.current ? [range.current[0], range.current[1]] : [min, max]),
        },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor, width: 1 },
          font: axisFont,
          values: (_u, splits, _axis, _space, step) => splits.map((v) => formatAxisTime(v, step)),
        },
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor, width: 1 },
          font: axisFont,
          label: unit,
          labelFont: axisFont,
          labelSize: 16,
          size: 64,
          values: (_u, splits) => splits.map((v) => tick(v)),
        },
      ],
      series: [
        { label: 'Time', value: (_u, v) => (v === null ? '—' : formatTime(v)) },
        ...ordered.map((s, i) => ({
          label: s.label,
          stroke: s.color,
          width: stacked ? 0 : 1.75,
          dash: s.dash,
          fill: stacked ? s.color : undefined,
          spanGaps: false,
          points: { show: false, size: 5, filter: stacked ? null : isolatedPoints },
          paths: stacked ? uPlot.paths.bars!({ size: [0.7, 24], align: 0 }) : undefined,
          value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => {
            const raw = idx === null ? null : ordered[i]?.values[idx];
            return raw === null || raw === undefined ? '—' : format(raw);
          },
        })),
      ],
    };
    const chart = new uPlot(options, data, el);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [shape, hasData, height]);

  useEffect(() => {
    plot.current?.setData(data, true);
  }, [data]);

  const latest = t.length - 1;
  const recent = Array.from({ length: Math.min(t.length, 10) }, (_, i) => latest - i);
  return (
    <figure class="chart">
      <figcaption class="chart-title">
        {title} <span class="unit">({unit})</span>
      </figcaption>
      {hasData ? (
        <>
          <div class="chart-plot" ref={host} role="img" aria-label={describeChart(title, series, format)} />
          <details class="chart-table">
            <summary>Latest values as a table</summary>
            <table>
              <caption class="sr-only">{title}: the latest points, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  {series.map((s) => (
                    <th scope="col" key={s.label}>
                      {s.label}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {recent.map((i) => (
                  <tr key={t[i]}>
                    <td>{formatTime(t[i]!)}</td>
                    {series.map((s) => {
                      const v = s.values[i];
                      return <td key={s.label}>{v === null || v === undefined ? '—' : format(v)}</td>;
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      ) : (
        <div class="chart-empty" style={{ height: `${height}px` }}>
          {empty}
        </div>
      )}
    </figure>
  );
}
