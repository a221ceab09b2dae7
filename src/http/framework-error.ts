import type { FastifyError } from 'fastify';
import { type ApiError, apiError } from './api-error.js';

/** Maps framework errors (bad JSON, body too large, wrong content type) to a provider-style client error. */
export function frameworkError(error: FastifyError): ApiError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError('too_large', 413, `The request body is too large: ${error.message}.`, {
        code: 'request_too_large',
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiError(
        'invalid_request',
        415,
        'Unsupported Content-Type: send the body as application/json.',
        {
          code: 'unsupported_media_type',
        },
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return apiError('invalid_request', 400, 'The request body is empty: send a JSON object.', {
        code: 'invalid_body',
      });
    default:
      if (error.statusCode === 400 || error instanceof SyntaxError) {
        return apiError(
          'invalid_request',
          400,
          `We could not parse the JSON body of your request: ${error.message}. Send valid JSON with Content-Type: application/json.`,
          { code: 'invalid_json' },
        );
      }
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return apiError('invalid_request', error.statusCode, error.message, { code: null });
      }
      return apiError('server_error', 500, 'The server failed while processing the request.', {
        code: 'internal_error',
      });
  }
}
