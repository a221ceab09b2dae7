import type { FastifyInstance, FastifyReply } from 'fastify';
import { budgetAdmin, createBudgetBody, updateBudgetBody } from '../policy/budget-admin.js';
import type { BudgetDirectory } from '../policy/budget-directory.js';
import type { BudgetStatus } from '../policy/ledger.js';
import type { BudgetRule } from '../policy/limit-rules.js';
import type { ControlStore } from '../store/control-store.js';
import { apiError, isApiError, openAIErrorBody } from './api-error.js';
import { parseRequest } from './wire/invalid-request.js';

export interface BudgetAdminRouteDeps {
  store: ControlStore;
  directory: BudgetDirectory;
  configBudgets(): readonly BudgetRule[];
  status(rules: readonly BudgetRule[]): Promise<BudgetStatus[]>;
}

type NameParams = { Params: { name: string } };

/**
 * The admin API for budgets: /admin/budgets (config and store budgets with their spend) and
 * /admin/budgets/:name. The server's hook has already checked the caller is an admin.
 */
export function registerBudgetAdminRoutes(app: FastifyInstance, deps: BudgetAdminRouteDeps): void {
  const budgets = budgetAdmin(deps);

  const send = (reply: FastifyReply, result: unknown, status = 200) =>
    isApiError(result)
      ? reply.code(result.status).send(openAIErrorBody(result))
      : reply.code(status).send(result);
  // Spend lives in the shared state (Redis in a cluster), which may not answer.
  const spendUnavailable = (reply: FastifyReply, error: unknown) =>
    send(
      reply,
      apiError('overloaded', 503, `Budget spend cannot be read right now: ${(error as Error).message}`, {
        code: 'limits_unavailable',
      }),
    );

  app.get('/admin/budgets', async (_request, reply) => {
    try {
      return send(reply, { object: 'list', budgets: await budgets.list() });
    } catch (error) {
      return spendUnavailable(reply, error);
    }
  });
  app.post('/admin/budgets', async (request, reply) => {
    const body = parseRequest(createBudgetBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await budgets.create(body.data), 201);
  });
  app.get<NameParams>('/admin/budgets/:name', async (request, reply) => {
    try {
      return send(reply, await budgets.show(request.params.name));
    } catch (error) {
      return spendUnavailable(reply, error);
    }
  });
  app.patch<NameParams>('/admin/budgets/:name', async (request, reply) => {
    const body = parseRequest(updateBudgetBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await budgets.update(request.params.name, body.data));
  });
  app.delete<NameParams>('/admin/budgets/:name', async (request, reply) =>
    send(reply, await budgets.delete(request.params.name)),
  );
}
