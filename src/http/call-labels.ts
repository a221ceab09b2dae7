import type { CallLabels } from '../gateway/call.js';
import { type ApiError, apiError, isApiError } from './api-error.js';

type Headers = Record<string, string | string[] | undefined>;

const MAX_TAGS = 16;
const TAG_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TAG_VALUE = 128;
const LABEL = /^[A-Za-z0-9_.:/@-]{1,128}$/;
// W3C trace context: version-traceid-parentid-flags; an all-zero trace id is invalid.
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

function single(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function invalid(header: string, message: string): ApiError {
  return apiError('invalid_request', 400, `Invalid ${header}: ${message}`, {
    code: 'invalid_header',
    param: header,
  });
}

/** `x-sluice-tags: feature=autocomplete, team=search` → { feature: 'autocomplete', team: 'search' }. */
function parseTags(text: string): Record<string, string> | ApiError {
  const tags: Record<string, string> = {};
  const pairs = text.split(',').filter((pair) => pair.trim() !== '');
  if (pairs.length > MAX_TAGS)
    return invalid('x-sluice-tags', `at most ${MAX_TAGS} tags, got ${pairs.length}.`);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
    if (eq < 0 || !TAG_NAME.test(name)) {
      return invalid(
        'x-sluice-tags',
        `'${pair.trim().slice(0, 80)}' is not name=value (names: letters, digits, _ . -, up to 64).`,
      );
    }
    if (value.length > MAX_TAG_VALUE) {
      return invalid('x-sluice-tags', `the value of '${name}' is longer than ${MAX_TAG_VALUE} characters.`);
    }
    tags[name] = value;
  }
  return tags;
}

function label(headers: Headers, name: string): string | undefined | ApiError {
  const value = single(headers, name)?.trim();
  if (value === undefined || value === '') return undefined;
  if (!LABEL.test(value)) return invalid(name, 'use up to 128 letters, digits and _ . : / @ -.');
  return value;
}

/**
 * What a request says about itself in headers, for its wide event: tags, trace id, and the parts
 * of the version tuple the application owns (its prompt and retrieval index).
 */
export function callLabels(headers: Headers): CallLabels | ApiError {
  const tagHeader = single(headers, 'x-sluice-tags');
  const tags = tagHeader === undefined ? {} : parseTags(tagHeader);
  if (isApiError(tags)) return tags;
  const labels: CallLabels = { tags };
  // An unreadable traceparent is ignored, as the W3C spec asks of every participant.
  const traceparent = TRACEPARENT.exec(single(headers, 'traceparent')?.trim().toLowerCase() ?? '');
  const traceId =
    traceparent && !/^0+$/.test(traceparent[1]!) ? traceparent[1] : label(headers, 'x-sluice-trace-id');
  const promptId = label(headers, 'x-sluice-prompt-id');
  const promptVersion = label(headers, 'x-sluice-prompt-version');
  const retrievalIndexHash = label(headers, 'x-sluice-retrieval-index');
  if (isApiError(traceId)) return traceId;
  if (isApiError(promptId)) return promptId;
  if (isApiError(promptVersion)) return promptVersion;
  if (isApiError(retrievalIndexHash)) return retrievalIndexHash;
  if (traceId) labels.traceId = traceId;
  if (promptId) labels.promptId = promptId;
  if (promptVersion) labels.promptVersion = promptVersion;
  if (retrievalIndexHash) labels.retrievalIndexHash = retrievalIndexHash;
  return labels;
}
