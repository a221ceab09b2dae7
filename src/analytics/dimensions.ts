/**
 * What analytics can group and filter by: an allow-list from the names clients use to the
 * columns of the wide event. A name outside this list never reaches SQL.
 */
export interface ColumnDimension {
  kind: 'column';
  name: DimensionName;
  /** The column in `events` (and in `events_rollup_1m` when `inRollup`). */
  column: string;
  type: 'string' | 'int';
  /**
   * Kept in the per-minute rollups, so long ranges can group and filter by it cheaply. Each kept
   * dimension multiplies the rollup's rows by its values per minute, so only those a long-range
   * question needs are kept (route, model, key, team, priority, status…); the rest read raw events.
   */
  inRollup: boolean;
}

/** `status_class`: 2xx, 4xx, 5xx… derived from `status`. */
export interface StatusClassDimension {
  kind: 'status_class';
  name: 'status_class';
  inRollup: true;
}

/** `tag.<name>`: one key of the event's tags (a JSON object column). Never in rollups. */
export interface TagDimension {
  kind: 'tag';
  name: `tag.${string}`;
  tag: string;
  inRollup: false;
}

export type Dimension = ColumnDimension | StatusClassDimension | TagDimension;

const columns = {
  route: { column: 'route', type: 'string', inRollup: true },
  route_version: { column: 'route_version', type: 'string', inRollup: false },
  model: { column: 'model', type: 'string', inRollup: true },
  provider: { column: 'provider', type: 'string', inRollup: true },
  target: { column: 'target', type: 'string', inRollup: true },
  key: { column: 'key_name', type: 'string', inRollup: true },
  key_id: { column: 'key_id', type: 'string', inRollup: true },
  team: { column: 'team', type: 'string', inRollup: true },
  org: { column: 'org', type: 'string', inRollup: true },
  priority: { column: 'priority', type: 'string', inRollup: true },
  status: { column: 'status', type: 'int', inRollup: true },
  error_class: { column: 'error_class', type: 'string', inRollup: true },
  cache_status: { column: 'cache_status', type: 'string', inRollup: false },
  operation: { column: 'operation', type: 'string', inRollup: true },
  wire: { column: 'wire', type: 'string', inRollup: false },
  region: { column: 'region', type: 'string', inRollup: false },
  prompt_id: { column: 'prompt_id', type: 'string', inRollup: false },
  prompt_version: { column: 'prompt_version', type: 'string', inRollup: false },
} as const satisfies Record<string, Omit<ColumnDimension, 'kind' | 'name'>>;

export type DimensionName = keyof typeof columns;

export const dimensionNames = [...(Object.keys(columns) as DimensionName[]), 'status_class'] as const;

/** The string columns kept in `events_rollup_1m`, in table order (status is its own column). */
export const rollupStringColumns = Object.values(columns)
  .filter((spec) => spec.inRollup && spec.type === 'string')
  .map((spec) => spec.column);

const TAG_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const statusClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof statusClasses)[number];

/** The dimension a client named, or a message saying what it may name instead. */
export function parseDimension(name: string): Dimension | string {
  if (name === 'status_class') return { kind: 'status_class', name, inRollup: true };
  if (name.startsWith('tag.')) {
    const tag = name.slice(4);
    if (!TAG_NAME.test(tag)) {
      return `tag names are 1 to 64 letters, digits, "_", "-" or ".", got "${tag}"`;
    }
    return { kind: 'tag', name: `tag.${tag}`, tag, inRollup: false };
  }
  if (Object.hasOwn(columns, name)) {
    const spec = columns[name as DimensionName];
    return { kind: 'column', name: name as DimensionName, ...spec };
  }
  return `unknown dimension "${name}"; use one of ${dimensionNames.join(', ')} or tag.<name>`;
}

export function isDimensionName(name: string): boolean {
  return typeof parseDimension(name) !== 'string';
}
