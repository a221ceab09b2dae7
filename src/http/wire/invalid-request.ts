import type { z } from 'zod';
import { type ApiError, apiError } from '../api-error.js';

/** "messages[0].content": the path style OpenAI uses in its `param` field. */
export function paramPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function quoteList(values: readonly unknown[]): string {
  const quoted = values.map((v) => `'${String(v)}'`);
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

/**
 * Turns the first schema issue into one precise client error, in OpenAI's words
 * ("Missing required parameter: 'messages'.", "Invalid type for 'n': expected an integer, ...").
 * Parse with `{ reportInput: true }` so the received value can be named.
 */
export function invalidRequestFromIssues(issues: readonly z.core.$ZodIssue[]): ApiError {
  const issue = issues[0];
  if (!issue) return apiError('invalid_request', 400, 'The request body is invalid.');
  const param = paramPath(issue.path);
  const name = param || 'body';
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) {
        return apiError('invalid_request', 400, `Missing required parameter: '${name}'.`, {
          param,
          code: 'missing_required_parameter',
        });
      }
      return apiError(
        'invalid_request',
        400,
        `Invalid type for '${name}': expected ${expectedName(issue.expected)}, but got ${typeName(input)} instead.`,
        { param, code: 'invalid_type' },
      );
    case 'invalid_value':
      return apiError(
        'invalid_request',
        400,
        `Invalid value for '${name}': ${JSON.stringify(input)}. Supported values are: ${quoteList(issue.values)}.`,
        { param, code: 'invalid_value' },
      );
    case 'invalid_union': {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      if (discriminator) {
        // Zod 4 already ends the path with the discriminator key; older versions stop at the object.
        const at = paramPath(
          issue.path.at(-1) === discriminator ? issue.path : [...issue.path, discriminator],
        );
        return apiError(
          'invalid_request',
          400,
          `Invalid value for '${at}': it is missing or not a supported value.`,
          {
            param: at,
            code: 'invalid_value',
          },
        );
      }
      const nested = issue.errors.flat();
      // Report the branch that got furthest: its deepest path is the most specific message.
      const deepest = nested.sort((a, b) => b.path.length - a.path.length)[0];
      if (deepest && deepest.path.length > 0) {
        return invalidRequestFromIssues([{ ...deepest, path: [...issue.path, ...deepest.path] }]);
      }
      const expected = [
        ...new Set(nested.filter((i) => i.code === 'invalid_type').map((i) => expectedName(i.expected))),
      ];
      const wanted =
        expected.length > 0 ? `expected ${expected.join(' or ')}` : 'it matches none of the accepted shapes';
      return apiError(
        'invalid_request',
        400,
        `Invalid type for '${name}': ${wanted}, but got ${typeName(input)} instead.`,
        {
          param,
          code: 'invalid_type',
        },
      );
    }
    case 'too_small':
      if (issue.origin === 'array') {
        return apiError(
          'invalid_request',
          400,
          `Invalid '${name}': expected an array with at least ${issue.minimum} item(s), but got ${Array.isArray(input) ? input.length : 'fewer'}.`,
          { param, code: issue.minimum === 1 ? 'empty_array' : 'array_below_min_length' },
        );
      }
      if (issue.origin === 'string') {
        return apiError('invalid_request', 400, `Invalid '${name}': string must not be empty.`, {
          param,
          code: 'string_below_min_length',
        });
      }
      return apiError(
        'invalid_request',
        400,
        `Invalid '${name}': ${JSON.stringify(input)} is less than the minimum of ${issue.minimum}.`,
        { param, code: 'integer_below_min_value' },
      );
    case 'too_big':
      if (issue.origin === 'array') {
        return apiError(
          'invalid_request',
          400,
          `Invalid '${name}': expected at most ${issue.maximum} item(s).`,
          {
            param,
            code: 'array_above_max_length',
          },
        );
      }
      return apiError(
        'invalid_request',
        400,
        `Invalid '${name}': ${JSON.stringify(input)} is greater than the maximum of ${issue.maximum}.`,
        { param, code: 'integer_above_max_value' },
      );
    default:
      return apiError('invalid_request', 400, `Invalid '${name}': ${issue.message}.`, {
        param,
        code: 'invalid_value',
      });
  }
}

function expectedName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'array':
      return 'an array';
    case 'object':
      return 'an object';
    default:
      return `a ${expected}`;
  }
}

/** Validates `body` against `schema`; returns the data or one precise client error. */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  body: unknown,
): { ok: true; data: z.infer<S> } | { ok: false; error: ApiError } {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    return {
      ok: false,
      error: apiError('invalid_request', 400, 'The request body must be a JSON object.', {
        code: 'invalid_body',
      }),
    };
  }
  // Parsed plainly first: with `reportInput` zod's parse of a valid body takes about three times
  // as long, and only the error needs the received values. A bad body is parsed again for them.
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, data: result.data };
  const detailed = schema.safeParse(body, { reportInput: true });
  const issues = detailed.success ? result.error.issues : detailed.error.issues;
  return { ok: false, error: invalidRequestFromIssues(issues) };
}
