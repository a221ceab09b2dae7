/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`) as text: the share of CPU by area
 * (Sluice's own files, each npm package, Node internals, GC), the functions with the most self
 * time, and Sluice's functions by inclusive time (themselves plus everything they call).
 */

const special = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Where a frame lives: "sluice dist/…", an npm package, "node:…" or a V8 pseudo-frame. */
function area(frame) {
  const { url, functionName } = frame;
  if (special.has(functionName)) return functionName;
  if (!url) return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0];
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `sluice ${dist[1].split('/')[0]}/`;
  return url;
}

function frameName(frame) {
  const file = frame.url ? frame.url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^file:\/\//, '') : '';
  const name = frame.functionName || '(anonymous)';
  return file ? `${name} ${file}:${frame.lineNumber + 1}` : name;
}

const percent = (part, whole) => `${((100 * part) / whole).toFixed(1).padStart(5)}%`;

/**
 * @param {{startTime?: number, nodes: {id: number, callFrame: {functionName: string, url: string, lineNumber: number}, children?: number[]}[], samples: number[], timeDeltas: number[]}} profile
 * @param {{ top?: number, lastSeconds?: number }} [options] `lastSeconds`: only the end of the profile
 */
export function summariseProfile(profile, { top = 20, lastSeconds } = {}) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Sample times, to keep only the last `lastSeconds` (the measured load, not start-up and warm-up).
  const times = [];
  let at = profile.startTime ?? 0;
  for (const delta of profile.timeDeltas) {
    at += delta;
    times.push(at);
  }
  const from = lastSeconds ? (times.at(-1) ?? 0) - lastSeconds * 1e6 : Number.NEGATIVE_INFINITY;
  const selfUs = new Map();
  profile.samples.forEach((id, i) => {
    if (times[i] < from) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  });
  const idle = [...selfUs].reduce(
    (sum, [id, us]) => (byId.get(id)?.callFrame.functionName === '(idle)' ? sum + us : sum),
    0,
  );
  const busy = [...selfUs.values()].reduce((a, b) => a + b, 0) - idle;

  const byArea = new Map();
  const byFrame = new Map();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') continue;
    byArea.set(area(frame), (byArea.get(area(frame)) ?? 0) + us);
    byFrame.set(frameName(frame), (byFrame.get(frameName(frame)) ?? 0) + us);
  }

  // Inclusive time of Sluice's own functions: a sample counts once for every distinct function
  // on its stack, so recursion is not counted twice.
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame || !/\/dist\//.test(frame.url) || /node_modules/.test(frame.url)) continue;
      const name = frameName(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }

  const list = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => `  ${percent(us, busy)}  ${name}`)
      .join('\n');
  return [
    `busy ${(busy / 1e6).toFixed(2)} s of ${((busy + idle) / 1e6).toFixed(2)} s profiled`,
    `self time by area:\n${list(byArea, 15)}`,
    `top functions by self time:\n${list(byFrame, top)}`,
    `Sluice functions by inclusive time:\n${list(inclusive, top)}`,
  ].join('\n\n');
}
