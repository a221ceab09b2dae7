import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { faultSchema } from './faults.js';

/** How fast one model serves, and how it degrades as its batch fills. See docs/simulator.md. */
export const modelProfileSchema = z.strictObject({
  name: z.string().min(1).describe('The model id clients send, e.g. "sim-fast".'),
  kind: z.enum(['chat', 'embedding']).default('chat'),
  ownedBy: z.string().default('sluice-sim'),
  slots: z
    .int()
    .min(1)
    .max(100_000)
    .default(8)
    .describe('Sequences decoded concurrently (continuous batching).'),
  queueLimit: z.int().min(0).default(64).describe('Requests waiting for a slot; beyond it, 429.'),
  prefillBaseMs: z.number().min(0).default(20).describe('Fixed cost before the first token.'),
  prefillMsPerToken: z.number().min(0).default(0.05).describe('Prefill cost per prompt token.'),
  decodeMsPerToken: z.number().min(0).default(10).describe('Time per output token with one busy slot.'),
  batchSlowdown: z
    .number()
    .min(0)
    .default(0.05)
    .describe('Extra fraction of decode time per additional busy slot.'),
  outputTokens: z
    .strictObject({
      mean: z.int().min(1).default(120),
      spread: z.number().min(0).max(1).default(0.5).describe('Lengths are uniform in mean*(1±spread).'),
    })
    .default({ mean: 120, spread: 0.5 }),
  reasoningTokens: z.int().min(0).default(0).describe('Hidden reasoning tokens decoded before the answer.'),
  contextWindow: z.int().min(1).default(128_000),
  embeddingDimensions: z.int().min(1).max(8192).default(256),
  price: z
    .strictObject({ inputPerMTok: z.number().min(0), outputPerMTok: z.number().min(0) })
    .optional()
    .describe('A price-like size, listed in /v1/models; the simulator charges nothing.'),
  quality: z
    .strictObject({
      invalidJsonRate: z.number().min(0).max(1).default(0),
      wrongAnswerRate: z.number().min(0).max(1).default(0),
    })
    .default({ invalidJsonRate: 0, wrongAnswerRate: 0 }),
  quota: z
    .strictObject({
      requestsPerMinute: z.int().min(1).optional(),
      tokensPerMinute: z.int().min(1).optional(),
    })
    .optional(),
  promptCacheMinTokens: z
    .int()
    .min(0)
    .default(1024)
    .describe('A repeated prompt prefix of at least this many tokens is reported as cached.'),
});

export type ModelProfile = z.infer<typeof modelProfileSchema>;

export const simConfigSchema = z.strictObject({
  seed: z.int().default(42),
  slots: z.int().min(1).optional().describe('Overrides every model’s slots.'),
  unknownModels: z
    .enum(['serve', 'reject'])
    .default('serve')
    .describe('"serve": an unknown model id is served by the first chat model; "reject": 404.'),
  maxBodyBytes: z
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  models: z.array(modelProfileSchema).min(1).optional(),
  faults: z.array(faultSchema).default([]),
});

export type SimConfigInput = z.input<typeof simConfigSchema>;
export type SimConfig = Omit<z.infer<typeof simConfigSchema>, 'models'> & { models: ModelProfile[] };

const defaultModels: z.input<typeof modelProfileSchema>[] = [
  {
    name: 'sim-fast',
    slots: 16,
    decodeMsPerToken: 6,
    prefillMsPerToken: 0.02,
    outputTokens: { mean: 80, spread: 0.5 },
    price: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
    quality: { invalidJsonRate: 0.02, wrongAnswerRate: 0.1 },
  },
  {
    name: 'sim-smart',
    slots: 8,
    decodeMsPerToken: 14,
    prefillMsPerToken: 0.06,
    outputTokens: { mean: 160, spread: 0.5 },
    price: { inputPerMTok: 2.5, outputPerMTok: 10 },
    quality: { invalidJsonRate: 0, wrongAnswerRate: 0.01 },
  },
  {
    name: 'sim-reasoner',
    slots: 4,
    decodeMsPerToken: 10,
    reasoningTokens: 64,
    outputTokens: { mean: 120, spread: 0.5 },
    price: { inputPerMTok: 1.1, outputPerMTok: 4.4 },
    quality: { invalidJsonRate: 0, wrongAnswerRate: 0 },
  },
  { name: 'sim-embed', kind: 'embedding', slots: 32, decodeMsPerToken: 0, embeddingDimensions: 256 },
];

/** Validates a config object and fills defaults; throws a ZodError whose issues name each bad field. */
export function resolveSimConfig(input: SimConfigInput = {}): SimConfig {
  const parsed = simConfigSchema.parse(input);
  const models = parsed.models ?? defaultModels.map((m) => modelProfileSchema.parse(m));
  const names = new Set<string>();
  for (const m of models) {
    if (names.has(m.name)) throw new Error(`models: the model name "${m.name}" appears twice`);
    names.add(m.name);
  }
  parsed.faults.forEach((fault, i) => {
    const unknown = fault.models?.filter((name) => !names.has(name)) ?? [];
    if (unknown.length > 0) {
      throw new Error(
        `faults[${i}].models: no model named ${unknown.join(', ')} (models: ${[...names].join(', ')})`,
      );
    }
  });
  const withSlots = parsed.slots ? models.map((m) => ({ ...m, slots: parsed.slots as number })) : models;
  return { ...parsed, models: withSlots };
}

/** Reads a YAML (or JSON) simulator config file. */
export async function loadSimConfigFile(path: string): Promise<SimConfigInput> {
  const text = await readFile(path, 'utf8');
  const doc: unknown = parseYaml(text);
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error(`${path}: expected a mapping at the top level (seed, slots, models, faults, ...)`);
  }
  return doc as SimConfigInput;
}
