/** Request priorities, most important first. Under overload the last ones are shed first. */
export const priorities = ['critical', 'high', 'normal', 'low', 'batch'] as const;

export type Priority = (typeof priorities)[number];

const ranks: Record<Priority, number> = { critical: 0, high: 1, normal: 2, low: 3, batch: 4 };

/** 0 for `critical` up to 4 for `batch`: a lower rank is served first and shed last. */
export function priorityRank(priority: Priority): number {
  return ranks[priority];
}

/** Reads a priority from a header or config value (case and surrounding spaces ignored); unknown → undefined. */
export function parsePriority(value: string | undefined): Priority | undefined {
  if (value === undefined) return undefined;
  const name = value.trim().toLowerCase();
  return Object.hasOwn(ranks, name) ? (name as Priority) : undefined;
}
