import { type ApiError, apiError } from '../http/api-error.js';

/** Where a page of the request list ended: the (time, id) of its last request. */
export interface RequestCursor {
  timeMs: number;
  id: string;
}

/** Opaque to clients: base64url of JSON, so its shape can change without breaking them. */
export function encodeCursor(cursor: RequestCursor): string {
  return Buffer.from(JSON.stringify([cursor.timeMs, cursor.id])).toString('base64url');
}

export function decodeCursor(text: string): RequestCursor | ApiError {
  const invalid = apiError(
    'invalid_request',
    400,
    "Invalid 'cursor': pass the nextCursor of the previous page unchanged.",
    { param: 'cursor', code: 'invalid_cursor' },
  );
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return invalid;
    const [timeMs, id] = value as unknown[];
    if (!Number.isSafeInteger(timeMs) || typeof id !== 'string' || id.length > 200) return invalid;
    return { timeMs: timeMs as number, id };
  } catch {
    return invalid;
  }
}
