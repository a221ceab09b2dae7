import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError, openAIErrorBody } from '../http/api-error.js';
import { parseRequest } from '../http/wire/invalid-request.js';
import { faultSchema } from './faults.js';
import type { Simulator } from './simulator.js';

const faultsBody = z.strictObject({ faults: z.array(faultSchema).min(1) });

/** Test and chaos control: add or clear faults, read counters. */
export function registerControlRoutes(app: FastifyInstance, sim: Simulator): void {
  app.get('/sim/stats', async () => sim.stats());
  app.get('/sim/faults', async () => ({ faults: sim.faults.list(sim.clock.now()) }));
  app.post('/sim/faults', async (request, reply) => {
    // Accept one fault, a list, or {"faults": [...]}.
    const raw = request.body;
    const body = Array.isArray(raw)
      ? { faults: raw }
      : raw && typeof raw === 'object' && 'kind' in raw
        ? { faults: [raw] }
        : raw;
    const parsed = parseRequest(faultsBody, body);
    if (!parsed.ok) return reply.code(400).send(openAIErrorBody(parsed.error));
    const known = new Set(sim.models.map((m) => m.name));
    const unknown = parsed.data.faults.flatMap((f) => f.models ?? []).filter((name) => !known.has(name));
    if (unknown.length > 0) {
      const error = apiError(
        'invalid_request',
        400,
        `No model named ${unknown.join(', ')}: known models are ${[...known].join(', ')}.`,
        {
          param: 'models',
          code: 'model_not_found',
        },
      );
      return reply.code(400).send(openAIErrorBody(error));
    }
    const ids = sim.faults.add(parsed.data.faults, sim.clock.now());
    return reply.code(201).send({ ids, faults: sim.faults.list(sim.clock.now()) });
  });
  app.delete('/sim/faults', async () => {
    sim.faults.clear();
    return { faults: [] };
  });
  app.delete<{ Params: { id: string } }>('/sim/faults/:id', async (request, reply) => {
    if (sim.faults.remove(request.params.id)) return { deleted: request.params.id };
    return reply
      .code(404)
      .send(
        openAIErrorBody(
          apiError('not_found', 404, `No fault with id '${request.params.id}'.`, { code: 'not_found' }),
        ),
      );
  });
}
