/**
 * Draws the overload benchmark's time series as an SVG of stacked panels sharing the time axis,
 * and converts it to PNG with ImageMagick's `convert` (no browser, no native npm module).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const width = 1000;
const left = 70;
const right = 190; // room for the legend
const panelHeight = 220;
const gap = 56;
const top = 40;

const xml = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `count` round tick values covering [0, max]. */
function ticks(max, count = 5) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const values = [0];
  while (values.at(-1) < max - step * 1e-9) values.push(Number((values.length * step).toPrecision(12)));
  return values;
}

/**
 * @typedef {object} Series
 * @property {string} label
 * @property {string} color
 * @property {Array<[number, number | undefined]>} points [seconds, value]; undefined breaks the line
 * @property {boolean} [dashed]
 * @property {number} [width]
 * @property {boolean} [step] draw as a step function
 *
 * @typedef {object} Panel
 * @property {string} title
 * @property {string} unit
 * @property {Series[]} series
 * @property {number} [max] the y axis' top; default: the largest value
 */

/**
 * @param {{ title: string, durationS: number, boundaries: number[], panels: Panel[] }} chart
 * @returns {string} the SVG document
 */
export function svgChart({ title, durationS, boundaries, panels }) {
  const height = top + panels.length * (panelHeight + gap) + 10;
  const plotWidth = width - left - right;
  const x = (s) => left + (s / durationS) * plotWidth;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${xml(title)}</text>`,
  ];
  panels.forEach((panel, index) => {
    const y0 = top + index * (panelHeight + gap) + 20;
    const values = panel.series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => v !== undefined);
    const yTicks = ticks(panel.max ?? Math.max(1e-9, ...values));
    const yMax = yTicks.at(-1);
    const y = (v) => y0 + panelHeight - (Math.min(v, yMax) / yMax) * panelHeight;
    out.push(`<text x="${left}" y="${y0 - 8}" font-size="13" font-weight="bold">${xml(panel.title)}</text>`);
    for (const v of yTicks) {
      out.push(
        `<line x1="${left}" x2="${left + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#e4e4e4"/>`,
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#444">${v}</text>`,
      );
    }
    for (const s of ticks(durationS, 10)) {
      if (s > durationS + 1e-9) continue;
      out.push(
        `<line x1="${x(s)}" x2="${x(s)}" y1="${y0 + panelHeight}" y2="${y0 + panelHeight + 4}" stroke="#444"/>`,
        `<text x="${x(s)}" y="${y0 + panelHeight + 16}" text-anchor="middle" fill="#444">${s}</text>`,
      );
    }
    out.push(
      `<text x="${left + plotWidth}" y="${y0 + panelHeight + 30}" text-anchor="end" fill="#444">time (s)</text>`,
      `<text x="${18}" y="${y0 + panelHeight / 2}" text-anchor="middle" fill="#444" transform="rotate(-90 18 ${y0 + panelHeight / 2})">${xml(panel.unit)}</text>`,
    );
    for (const b of boundaries) {
      out.push(
        `<line x1="${x(b)}" x2="${x(b)}" y1="${y0}" y2="${y0 + panelHeight}" stroke="#999" stroke-dasharray="3,3"/>`,
      );
    }
    out.push(
      `<rect x="${left}" y="${y0}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#444"/>`,
    );
    panel.series.forEach((series, i) => {
      let d = '';
      let pen = 'M';
      let previous;
      for (const [s, v] of series.points) {
        if (v === undefined) {
          pen = 'M';
          previous = undefined;
          continue;
        }
        if (series.step && previous !== undefined) d += `L${x(s).toFixed(1)},${y(previous).toFixed(1)}`;
        d += `${pen}${x(s).toFixed(1)},${y(v).toFixed(1)}`;
        pen = 'L';
        previous = v;
      }
      const dash = series.dashed ? ' stroke-dasharray="6,4"' : '';
      out.push(
        `<path d="${d}" fill="none" stroke="${series.color}" stroke-width="${series.width ?? 1.6}"${dash} stroke-linejoin="round"/>`,
      );
      const ly = y0 + 8 + i * 18;
      const lx = left + plotWidth + 12;
      out.push(
        `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${series.color}" stroke-width="${series.width ?? 1.6}"${dash}/>`,
        `<text x="${lx + 28}" y="${ly + 4}">${xml(series.label)}</text>`,
      );
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

/** An ImageMagick `convert` that really is one (a stand-in may sit first on PATH), or undefined. */
export function findConvert() {
  for (const candidate of ['convert', '/usr/bin/convert', 'magick']) {
    const run = spawnSync(candidate, ['-version'], { encoding: 'utf8' });
    if (run.status === 0 && /^Version: ImageMagick/m.test(run.stdout)) return candidate;
  }
  return undefined;
}

/** Writes `svg` to `svgPath` and renders it to `pngPath`; returns an error message or undefined. */
export function writePng(svg, svgPath, pngPath) {
  writeFileSync(svgPath, svg);
  const convert = findConvert();
  if (!convert) return 'ImageMagick is not installed (apt-get install -y imagemagick): no PNG written';
  const run = spawnSync(convert, ['-density', '96', svgPath, '-strip', '-colors', '64', `PNG8:${pngPath}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return run.status === 0 ? undefined : `convert failed: ${run.stderr || run.error?.message}`;
}
