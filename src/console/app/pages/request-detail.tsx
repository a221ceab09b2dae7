import type { ComponentChildren } from 'preact';
import { type Api, ApiFailure, type WideEvent } from '../api.js';
import { formatCount, formatDateTime, formatMs, formatUsd, orDash } from '../format.js';
import { usePoll } from '../poll.js';
import { href } from '../router.js';
import { Empty, ErrorNotice, Loading } from '../states.js';
import { Waterfall } from '../waterfall.js';
import { StatusBadge } from './requests.js';

export function RequestDetailPage({ api, id, admin }: { api: Api; id: string; admin: boolean }) {
  const detail = usePoll((signal) => api.request(id, signal), [api, id]);
  const back = (
    <a class="back" href={href('/requests')}>
      ← Requests
    </a>
  );
  if (detail.error) {
    const missing = detail.error instanceof ApiFailure && detail.error.status === 404;
    return (
      <section aria-busy="false">
        {back}
        <h1>Request {id}</h1>
        {missing ? (
          <Empty title="No such request.">
            It may be older than the events kept, not stored yet (events are written within a second), or
            {admin ? ' mistyped.' : ' made with another key: an API key sees only its own requests.'}
          </Empty>
        ) : (
          <ErrorNotice error={detail.error} what="the request" retry={detail.refresh} />
        )}
      </section>
    );
  }
  if (!detail.data) {
    return (
      <section aria-busy="true">
        <Loading what="the request" />
      </section>
    );
  }
  const { event: e, related } = detail.data;
  return (
    <section aria-labelledby="request-title" aria-busy="false">
      {back}
      <div class="page-head">
        <h1 id="request-title">
          Request <code class="request-id">{e.id}</code>
        </h1>
        <StatusBadge event={e} />
      </div>
      <p class="muted">
        {formatDateTime(e.time)} · {e.operation}
        {e.stream ? ' (streamed)' : ''} · {e.wire} API · {formatMs(e.timings.totalMs)} in total
        {e.timings.firstTokenMs !== null && <>, first token after {formatMs(e.timings.firstTokenMs)}</>}
      </p>
      {e.status >= 400 && (
        <p class="notice notice-error">
          <strong>{orDash(e.errorClass)}</strong>
          {e.errorCode && <> · {e.errorCode}</>}: {orDash(e.errorMessage)}
        </p>
      )}
      <div class="card">
        <h2 class="card-title">Attempts</h2>
        {e.attempts.length === 0 ? (
          <Empty title="No attempt was made.">
            The gateway answered before reaching a provider (authentication, validation, budget or cache).
          </Empty>
        ) : (
          <Waterfall event={e} />
        )}
      </div>
      <div class="detail-grid">
        <Facts
          title="Versions"
          facts={[
            ['Requested model', e.requestedModel],
            ['Route', e.route],
            ['Route version', e.routeVersion],
            ['Target', e.target],
            ['Provider / model', e.provider && `${e.provider} / ${e.model}`],
            ['Prompt', e.promptId && `${e.promptId}${e.promptVersion ? ` @ ${e.promptVersion}` : ''}`],
            ['Retrieval index', e.retrievalIndexHash],
            ['Region', e.region],
          ]}
        />
        <Facts
          title="Tokens and cost"
          facts={[
            ['Input tokens', formatCount(e.tokens.input)],
            ['Output tokens', formatCount(e.tokens.output)],
            ['Cached input', formatCount(e.tokens.cachedInput)],
            ['Cache writes', formatCount(e.tokens.cacheWrite)],
            ['Reasoning', formatCount(e.tokens.reasoning)],
            ['Cost', e.costUsd === null ? 'unknown (no price for this model)' : formatUsd(e.costUsd)],
            ['Cache', e.cacheStatus ?? 'no cache on this route'],
          ]}
        />
        <Facts
          title="Flow control"
          facts={[
            ['Priority', e.priority],
            ['Queued', formatMs(e.queuedMs)],
            ['Shed', e.shed ? `yes${e.shedReason ? ` (${e.shedReason.replace('_', ' ')})` : ''}` : 'no'],
            ['Retries', String(e.retries)],
            ['Fallbacks', String(e.fallbacks)],
            ['Hedges', String(e.hedges)],
            ['Upstream time', formatMs(e.timings.upstreamMs)],
            ['Client left early', e.clientAborted ? 'yes' : 'no'],
          ]}
        />
        <Facts
          title="Caller"
          facts={[
            ['Key', e.keyName],
            ['Key id', e.keyId],
            ['Team', e.team],
            ['Org', e.org],
            ['Trace', e.traceId],
            [
              'Tags',
              Object.entries(e.tags ?? {})
                .map(([k, v]) => `${k}=${v}`)
                .join(', ') || null,
            ],
          ]}
        />
      </div>
      <Bodies event={e} />
      {related.length > 0 && (
        <div class="card">
          <h2 class="card-title">Related events</h2>
          <pre class="body">{related.map((r) => JSON.stringify(r, null, 2)).join('\n\n')}</pre>
        </div>
      )}
    </section>
  );
}

function Facts({ title, facts }: { title: string; facts: Array<[string, ComponentChildren]> }) {
  return (
    <div class="card">
      <h2 class="card-title">{title}</h2>
      <dl class="fact-list">
        {facts.map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>
              {value === null || value === undefined || value === '' ? <span class="muted">—</span> : value}
            </dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

/** A body as stored, pretty-printed when it is JSON. */
function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function Bodies({ event }: { event: WideEvent }) {
  if (event.requestBody === null && event.responseBody === null) {
    return (
      <div class="card">
        <h2 class="card-title">Bodies</h2>
        <p class="muted">
          This request's bodies were not recorded: recording them is off unless the gateway is configured to
          keep them (see docs/analytics.md).
        </p>
      </div>
    );
  }
  return (
    <div class="detail-grid detail-grid-2">
      <div class="card">
        <h2 class="card-title">Request body</h2>
        {event.requestBody === null ? (
          <p class="muted">Not recorded.</p>
        ) : (
          <pre class="body">{pretty(event.requestBody)}</pre>
        )}
      </div>
      <div class="card">
        <h2 class="card-title">Response body</h2>
        {event.responseBody === null ? (
          <p class="muted">Not recorded.</p>
        ) : (
          <pre class="body">{pretty(event.responseBody)}</pre>
        )}
      </div>
    </div>
  );
}
