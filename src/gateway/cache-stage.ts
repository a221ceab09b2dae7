import type { CachePolicy } from '../cache/cache-policy.js';
import type { CacheLookup } from '../cache/response-cache.js';
import { unitVector } from '../cache/vector-index.js';
import type { Priority } from '../flow/priority.js';
import { apiError, isApiError } from '../http/api-error.js';
import type { ChatCompletionRequest } from '../http/wire/openai-chat.js';
import type { Call, Principal } from './call.js';
import { dispatchEmbeddings } from './dispatch.js';
import type { Gateway } from './gateway.js';
import { resolvePlan } from './resolve.js';
import type { Route, Runtime } from './runtime.js';

/**
 * The cache stage, between resolve and dispatch (ARCHITECTURE.md): on a route that caches, looks
 * the request up and sets the call's cache status. `cacheControl` is the request's Cache-Control:
 * `no-cache` skips the lookup (the answer is still stored), `no-store` skips storing it.
 */
export async function lookupCache(
  gateway: Gateway,
  call: Call,
  route: Route,
  request: ChatCompletionRequest,
  cacheControl: string | string[] | undefined,
  client: { readonly signal: AbortSignal },
): Promise<CacheLookup | undefined> {
  const policy = cachePolicy(gateway.runtime, route);
  if (!policy) return undefined;
  const directives = new Set(
    [cacheControl ?? []]
      .flat()
      .flatMap((value) => value.split(','))
      .map((d) => d.trim().toLowerCase()),
  );
  const lookup = await gateway.cache.lookup({
    policy,
    request,
    owner: policy.settings.scope === 'key' ? owner(call.principal) : null,
    read: !directives.has('no-cache'),
    write: !directives.has('no-store'),
    embed: (text) => embed(gateway, call, policy, text, client.signal),
  });
  if (lookup) call.cacheStatus = lookup.status;
  return lookup;
}

/** The policy of a route whose definition has a cache block; direct "provider/model" routes have none. */
function cachePolicy(runtime: Runtime, route: Route): CachePolicy | undefined {
  const config = Object.hasOwn(runtime.config.routes, route.name)
    ? runtime.config.routes[route.name]
    : undefined;
  const settings = config?.cache;
  if (!settings) return undefined;
  const embedding =
    settings.mode === 'semantic' && settings.embeddingRoute !== undefined
      ? runtime.routes.get(settings.embeddingRoute)
      : undefined;
  return {
    route: route.name,
    version: route.version,
    settings,
    ...(embedding && { embedding: { route: embedding.name, version: embedding.version } }),
  };
}

/** Whose entries these are with `scope: key`: a virtual key by its id, a key of sluice.yaml by its name. */
function owner(principal: Principal): string {
  return principal.keyId ? `id:${principal.keyId}` : `name:${principal.keyName ?? ''}`;
}

/**
 * Embeds `text` through the policy's embedding route, in process, as a call of its own: it is
 * dispatched, limited and recorded like a client's embeddings request, in the caller's name.
 * Undefined when it fails or outlasts `embeddingTimeoutMs`: the lookup is then exact only.
 */
async function embed(
  gateway: Gateway,
  call: Call,
  policy: CachePolicy,
  text: string,
  clientSignal: AbortSignal,
): Promise<Float32Array | undefined> {
  const route = policy.embedding?.route;
  if (route === undefined) return undefined;
  // The cache embeds on the gateway's behalf: the caller's key need not be allowed on the embedding route.
  const embedCall = gateway.begin('openai', 'embeddings', { keyName: call.principal.keyName });
  embedCall.requestedModel = route;
  embedCall.priority = call.priority;
  const plan = resolvePlan(gateway.runtime, route, embedCall.principal);
  if (isApiError(plan)) {
    embedCall.error = plan;
    gateway.finish(embedCall, plan.status);
    return undefined;
  }
  embedCall.route = plan.route.name;
  const timeoutMs = policy.settings.embeddingTimeoutMs;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const flow = gateway.flow.enabled
    ? {
        state: gateway.flow,
        priority: (call.priority ?? 'normal') as Priority,
        deadlineAt: performance.now() + timeoutMs,
      }
    : undefined;
  const result = await dispatchEmbeddings(
    embedCall,
    plan,
    { model: route, input: text },
    AbortSignal.any([clientSignal, controller.signal]),
    flow,
  ).finally(() => clearTimeout(timer));
  if (!result.ok) {
    embedCall.error =
      controller.signal.aborted && !clientSignal.aborted
        ? apiError(
            'timeout',
            504,
            `The semantic cache of route '${policy.route}' gave up on embedding after ${timeoutMs} ms (embeddingTimeoutMs).`,
            { code: 'cache_embedding_timeout' },
          )
        : result.error;
    gateway.finish(embedCall, embedCall.error.status);
    return undefined;
  }
  gateway.finish(embedCall, 200);
  const embedding = result.value.data[0]?.embedding;
  if (embedding === undefined) return undefined;
  if (typeof embedding !== 'string') return unitVector(embedding);
  // A copy: a Float32Array view needs an offset aligned to 4 bytes, which Buffer's pool does not promise.
  const bytes = Uint8Array.from(Buffer.from(embedding, 'base64'));
  return unitVector(new Float32Array(bytes.buffer, 0, Math.floor(bytes.byteLength / 4)));
}
