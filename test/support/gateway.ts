import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Analytics } from '../../src/analytics/analytics.js';
import { type SluiceConfig, type SluiceConfigInput, sluiceConfigSchema } from '../../src/config/schema.js';
import type { CustomEvent } from '../../src/events/custom-event.js';
import { type EventPipeline, openEventPipeline } from '../../src/events/event-sink.js';
import type { CustomEventSink, EventSink } from '../../src/events/sink.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { buildGatewayServer } from '../../src/http/gateway-server.js';
import type { SimConfigInput } from '../../src/sim/config.js';
import { type RunningSimulator, type SimServerOptions, startSimServer } from '../../src/sim/server.js';

/** An event sink that keeps events in memory, for assertions. */
export function memorySink(): EventSink & { events: WideEvent[] } {
  const events: WideEvent[] = [];
  return { events, write: (event) => events.push(event), close: async () => {} };
}

/** A custom event sink that keeps what POST /v1/events accepted in memory. */
export function memoryCustomSink(): CustomEventSink & { events: CustomEvent[] } {
  const events: CustomEvent[] = [];
  return {
    events,
    accept: async (batch) =>
      batch.map((event) => {
        events.push(event);
        return true;
      }),
  };
}

export interface RunningGateway {
  url: string;
  gateway: Gateway;
  /** Wide events recorded (memory sink only; empty with a real pipeline). */
  events: WideEvent[];
  /** Custom events accepted (memory sink only). */
  customEvents: CustomEvent[];
  /** The configured event pipeline (store, buses), with `realEvents`. */
  pipeline?: EventPipeline;
  config: SluiceConfig;
  /** Log lines the gateway wrote (JSON strings), to check what it says and never says. */
  logs: string[];
  close(): Promise<void>;
}

/**
 * Starts a gateway in this process on a free port. `config` is a sluice.yaml object; a provider
 * `{ type: 'sim' }` without baseUrl is pointed at `simUrl`. Without a `dataDir`, it gets a temp
 * one of its own (its control store included), removed on close.
 */
export async function startGateway(
  config: SluiceConfigInput,
  options: {
    simUrl?: string;
    now?: () => number;
    loadConfig?: () => Promise<SluiceConfig>;
    realEvents?: boolean;
    /** The built console to serve at `/` (default: dist/console). */
    consoleDir?: string;
    /** Serves /api from these analytics (tests seed a real store behind them). */
    analytics?: Analytics;
    /** Also hands every event here, e.g. to a real store. */
    onEvent?: (event: WideEvent) => void;
  } = {},
): Promise<RunningGateway> {
  // Tests fire retries and fallbacks back to back; the retry budget has tests of its own, so
  // unless a test configures flow control, the budget's floor is out of the way.
  const flow = config.flow ?? { retryBudget: { minPerSecond: 10_000 } };
  const dataDir = config.dataDir ?? (await mkdtemp(join(tmpdir(), 'sluice-gateway-')));
  const parsed = sluiceConfigSchema.parse({
    ...config,
    dataDir,
    flow,
    server: { ...config.server, port: 0 },
  });
  const memory = memorySink();
  const sink: EventSink = {
    write: (event) => {
      memory.write(event);
      options.onEvent?.(event);
    },
    close: memory.close,
  };
  const custom = memoryCustomSink();
  const logs: string[] = [];
  const logger = pino({ level: parsed.logLevel }, { write: (line: string) => logs.push(line) });
  // With realEvents, the configured sink (DuckDB, ClickHouse, …) behind its bus and spool.
  const pipeline = options.realEvents ? await openEventPipeline(parsed, logger) : undefined;
  const { app, gateway } = buildGatewayServer({
    config: parsed,
    sink: pipeline?.sink ?? sink,
    eventStats: pipeline?.stats,
    customEvents: pipeline?.custom ?? custom,
    customEventStats: pipeline?.customStats,
    logger,
    simUrl: options.simUrl,
    now: options.now,
    loadConfig: options.loadConfig,
    consoleDir: options.consoleDir,
    analytics: options.analytics,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    events: memory.events,
    customEvents: custom.events,
    pipeline,
    config: parsed,
    logs,
    close: async () => {
      await app.close();
      if (config.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

type SimModelInput = NonNullable<SimConfigInput['models']>[number];

/**
 * A fast, roomy simulated model: a request takes a few milliseconds, never queues in the
 * simulator, and its answer is exactly 8 tokens.
 */
export const quickModel = {
  slots: 64,
  queueLimit: 1024,
  prefillBaseMs: 1,
  prefillMsPerToken: 0,
  decodeMsPerToken: 1,
  batchSlowdown: 0,
  outputTokens: { mean: 8, spread: 0 },
};

/** sim-fast and sim-smart, both quick: the targets most routes in tests name. */
export const quickModels: SimModelInput[] = [
  { name: 'sim-fast', ...quickModel },
  { name: 'sim-smart', ...quickModel },
];

/** A simulator plus a gateway in front of it, with one route per simulated model and `default`. */
export async function startGatewayWithSim(
  overrides: Partial<SluiceConfigInput> = {},
  sim: SimServerOptions = {},
  options: {
    now?: () => number;
    loadConfig?: () => Promise<SluiceConfig>;
    realEvents?: boolean;
    consoleDir?: string;
  } = {},
): Promise<RunningGateway & { sim: RunningSimulator }> {
  const simulator = await startSimServer(sim);
  const route = (model: string) => ({ targets: [{ provider: 'sim', model }] });
  const gateway = await startGateway(
    {
      providers: { sim: { type: 'sim', baseUrl: simulator.url } },
      routes: {
        default: {
          targets: [{ provider: 'sim', model: 'sim-fast' }],
          fallbacks: [{ provider: 'sim', model: 'sim-smart' }],
        },
        'sim-fast': route('sim-fast'),
        'sim-smart': route('sim-smart'),
        'sim-reasoner': route('sim-reasoner'),
        'sim-embed': route('sim-embed'),
      },
      events: { sink: 'none' },
      ...overrides,
    },
    { simUrl: simulator.url, ...options },
  );
  return {
    ...gateway,
    sim: simulator,
    close: async () => {
      await gateway.close();
      await simulator.close();
    },
  };
}
