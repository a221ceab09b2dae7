import type { FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import type { CustomEvent } from '../events/custom-event.js';
import { compileEventTypes, type EventTypes, type Sender } from '../events/event-types.js';
import type { CustomEventSink } from '../events/sink.js';
import { authenticate, isAdmin } from '../gateway/admit.js';
import type { Gateway } from '../gateway/gateway.js';
import { apiError, isApiError, openAIErrorBody } from './api-error.js';
import { parseEventBatch } from './event-batch.js';

export const EVENTS_PATH = '/v1/events';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the events route's own authentication: a client key, or the admin key. */
    eventSender?: Sender;
  }
}

/** Why one event of a batch was not accepted; `index` counts events from 0, `line` is the NDJSON line. */
export interface ItemError {
  index: number;
  line?: number;
  code: string;
  message: string;
  path: string;
}

/** The answer to POST /v1/events: `ids[i]` is the stored id of event i, null when it was rejected. */
export interface IngestResult {
  accepted: number;
  rejected: number;
  ids: (string | null)[];
  errors: ItemError[];
}

export interface EventRoutesOptions {
  gateway: Gateway;
  sink: CustomEventSink;
  /** events.ingest.maxBodyBytes: a route's body limit is fixed when the server starts. */
  maxBodyBytes: number;
  /** Epoch milliseconds; tests pin it. */
  now?: () => number;
}

// Compiled once per config object: a reload brings its new types in with its new runtime.
const compiledTypes = new WeakMap<SluiceConfig, EventTypes>();

function typesOf(config: SluiceConfig): EventTypes {
  let types = compiledTypes.get(config);
  if (!types) {
    types = compileEventTypes(config.events.types);
    compiledTypes.set(config, types);
  }
  return types;
}

/**
 * POST /v1/events: other systems send custom events (feedback, outcomes, labels) of the types
 * declared in sluice.yaml. Each event stands alone: the good ones of a batch are kept and the bad
 * ones answered with what is wrong. An event counts as accepted once it is spooled on disk.
 */
export function registerEventRoutes(app: FastifyInstance, options: EventRoutesOptions): void {
  const { gateway, sink } = options;
  const now = options.now ?? Date.now;

  // A plugin scope of its own: NDJSON, and JSON parsed here so a bad body gets this route's errors.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/json', 'application/x-ndjson'],
      { parseAs: 'string' },
      (_request, body, done) => done(null, body),
    );

    // Before the body is read, like the rest of /v1; the admin key is welcome here too. A named
    // key (a virtual key with admin scope included) is the sender; the admin key has no name.
    scope.addHook('onRequest', async (request, reply) => {
      const runtime = gateway.runtime;
      const principal = authenticate(runtime, request.headers);
      if (!isApiError(principal) && principal.keyName !== null) {
        request.eventSender = { keyName: principal.keyName, admin: false };
      } else if (isAdmin(runtime, request.headers)) {
        request.eventSender = { keyName: null, admin: true };
      } else if (!isApiError(principal)) {
        request.eventSender = { keyName: null, admin: false };
      } else {
        return reply
          .code(principal.status)
          .header('x-sluice-request-id', request.id)
          .send(openAIErrorBody(principal));
      }
    });

    scope.post(EVENTS_PATH, { bodyLimit: options.maxBodyBytes }, async (request, reply) => {
      reply.header('x-sluice-request-id', request.id);
      const config = gateway.runtime.config;
      const contentType = request.headers['content-type'] ?? '';
      const format = contentType.startsWith('application/x-ndjson') ? 'ndjson' : 'json';
      const batch = parseEventBatch(String(request.body ?? ''), format, config.events.ingest.maxBatchEvents);
      if ('error' in batch) return reply.code(batch.error.status).send(openAIErrorBody(batch.error));

      const types = typesOf(config);
      const sender = request.eventSender ?? { keyName: null, admin: false };
      const receivedMs = now();
      const ids: (string | null)[] = new Array(batch.items.length).fill(null);
      const errors: ItemError[] = [];
      const events: CustomEvent[] = [];
      const positions: number[] = [];
      batch.items.forEach((item, index) => {
        const at = { index, ...(item.line !== undefined && { line: item.line }) };
        if ('invalid' in item) {
          errors.push({ ...at, code: 'invalid_json', message: item.invalid, path: '' });
          return;
        }
        const result = types.admit(item.value, sender, receivedMs);
        if ('rejection' in result) errors.push({ ...at, ...result.rejection });
        else {
          events.push(result.event);
          positions.push(index);
        }
      });

      const durable = events.length > 0 ? await sink.accept(events) : [];
      let refused = 0;
      durable.forEach((ok, k) => {
        const index = positions[k]!;
        if (ok) ids[index] = events[k]!.id;
        else {
          refused++;
          const line = batch.items[index]?.line;
          errors.push({
            index,
            ...(line !== undefined && { line }),
            code: 'spool_full',
            message:
              'the event could not be spooled (the event spool is full or failing): send it again later',
            path: '',
          });
        }
      });
      if (refused > 0) errors.sort((a, b) => a.index - b.index);

      const accepted = events.length - refused;
      const result: IngestResult = { accepted, rejected: batch.items.length - accepted, ids, errors };
      if (accepted > 0) return reply.code(200).send(result);
      const first = errors[0]!;
      const error =
        refused > 0
          ? apiError('overloaded', 503, `No event was accepted: ${first.message}.`, {
              code: 'spool_full',
              headers: { 'retry-after': '1' },
            })
          : apiError(
              'invalid_request',
              400,
              `No event was accepted: event ${first.index}: ${first.message} (errors lists every event).`,
              { code: 'no_events_accepted', param: first.path || null },
            );
      return reply
        .code(error.status)
        .headers(error.headers ?? {})
        .send({ ...result, ...openAIErrorBody(error) });
    });
  });
}
