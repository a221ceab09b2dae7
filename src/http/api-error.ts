/**
 * An error a client can act on: what went wrong, the HTTP status, and which field.
 * Wire formats render it (OpenAI: {"error":{...}}, Anthropic: {"type":"error","error":{...}},
 * Gemini: {"error":{"code","message","status"}}).
 */
export type ErrorKind =
  | 'invalid_request'
  | 'authentication'
  | 'permission'
  | 'not_found'
  | 'too_large'
  | 'rate_limit'
  /** A budget is spent: HTTP 402. */
  | 'budget'
  | 'overloaded'
  | 'server_error'
  | 'timeout';

export interface ApiError {
  kind: ErrorKind;
  status: number;
  message: string;
  /** A stable machine-readable code, e.g. "missing_required_parameter". */
  code: string | null;
  /** The request field at fault, e.g. "messages[0].content". */
  param: string | null;
  headers?: Record<string, string>;
  /** Structured facts beside the message, e.g. the budget that refused: extra fields of the OpenAI body. */
  details?: Record<string, unknown>;
}

export function apiError(
  kind: ErrorKind,
  status: number,
  message: string,
  extra: Partial<Pick<ApiError, 'code' | 'param' | 'headers' | 'details'>> = {},
): ApiError {
  return {
    kind,
    status,
    message,
    code: extra.code ?? null,
    param: extra.param ?? null,
    headers: extra.headers,
    ...(extra.details && { details: extra.details }),
  };
}

const openAITypes: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'invalid_request_error',
  permission: 'invalid_request_error',
  not_found: 'invalid_request_error',
  too_large: 'invalid_request_error',
  rate_limit: 'rate_limit_error',
  budget: 'insufficient_quota',
  overloaded: 'server_error',
  server_error: 'server_error',
  timeout: 'timeout_error',
};

const anthropicTypes: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  rate_limit: 'rate_limit_error',
  budget: 'billing_error',
  overloaded: 'overloaded_error',
  server_error: 'api_error',
  timeout: 'timeout_error',
};

export function openAIErrorBody(error: ApiError): { error: Record<string, unknown> } {
  return {
    error: {
      message: error.message,
      type: openAITypes[error.kind],
      param: error.param,
      code: error.code,
      ...error.details,
    },
  };
}

export function anthropicErrorBody(error: ApiError): {
  type: 'error';
  error: { type: string; message: string };
} {
  const message =
    error.param && !error.message.includes(error.param) ? `${error.param}: ${error.message}` : error.message;
  return { type: 'error', error: { type: anthropicTypes[error.kind], message } };
}

const googleStatuses: Record<ErrorKind, string> = {
  invalid_request: 'INVALID_ARGUMENT',
  authentication: 'UNAUTHENTICATED',
  permission: 'PERMISSION_DENIED',
  not_found: 'NOT_FOUND',
  too_large: 'INVALID_ARGUMENT',
  rate_limit: 'RESOURCE_EXHAUSTED',
  budget: 'RESOURCE_EXHAUSTED',
  overloaded: 'UNAVAILABLE',
  server_error: 'INTERNAL',
  timeout: 'DEADLINE_EXCEEDED',
};

/**
 * Google's error shape (`{"error":{"code","message","status","details"}}`). The field at fault
 * rides in a BadRequest detail and a retry-after in a RetryInfo detail, where Gemini puts them.
 */
export function geminiErrorBody(error: ApiError): {
  error: { code: number; message: string; status: string; details?: unknown[] };
} {
  const details: unknown[] = [];
  if (error.param) {
    details.push({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [{ field: error.param, description: error.message }],
    });
  }
  const retryAfter = error.headers?.['retry-after'];
  if (retryAfter !== undefined) {
    details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` });
  }
  return {
    error: {
      code: error.status,
      message: error.message,
      status: googleStatuses[error.kind],
      ...(details.length > 0 && { details }),
    },
  };
}

export function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ApiError).status === 'number' &&
    typeof (value as ApiError).kind === 'string' &&
    typeof (value as ApiError).message === 'string'
  );
}
