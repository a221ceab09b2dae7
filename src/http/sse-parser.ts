/** One Server-Sent Event. `raw` is its exact text (terminator included), for pass-through. */
export interface SseEvent {
  event?: string;
  data: string;
  id?: string;
  raw: string;
}

/**
 * An incremental SSE parser (WHATWG event-stream rules): feed it text as it arrives, get the
 * complete events. Handles \n, \r\n and \r line ends, multi-line data, comments and ids.
 */
export class SseParser {
  private buffer = '';

  push(text: string): SseEvent[] {
    this.buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const end = findEventEnd(this.buffer);
      if (end < 0) break;
      const raw = this.buffer.slice(0, end.valueOf());
      this.buffer = this.buffer.slice(end.valueOf());
      const event = parseEvent(raw);
      if (event) events.push(event);
    }
    return events;
  }

  /** What is left when the stream ends without a final blank line. */
  flush(): SseEvent[] {
    const rest = this.buffer;
    this.buffer = '';
    const event = rest.trim() ? parseEvent(rest) : undefined;
    return event ? [event] : [];
  }
}

/** The index just past the blank line that ends the first event, or -1. */
function findEventEnd(text: string): number {
  // Fast path: servers we talk to use \n\n.
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  const cr = text.indexOf('\r\r');
  let best = -1;
  if (lf >= 0) best = lf + 2;
  if (crlf >= 0 && (best < 0 || crlf + 4 < best)) best = crlf + 4;
  if (cr >= 0 && (best < 0 || cr + 2 < best)) best = cr + 2;
  return best;
}

function parseEvent(raw: string): SseEvent | undefined {
  let event: string | undefined;
  let id: string | undefined;
  let data: string[] | undefined;
  for (const line of raw.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      data ??= [];
      data.push(value);
    } else if (field === 'event') event = value;
    else if (field === 'id') id = value;
  }
  if (data === undefined) return undefined;
  return { event, data: data.join('\n'), id, raw };
}
