import type { ServerResponse } from 'node:http';
import type { ChatCompletionChunk } from '../providers/canonical.js';
import { type AnthropicEvent, AnthropicStreamEncoder, messageId } from './anthropic-translate.js';
import { type ApiError, anthropicErrorBody, openAIErrorBody } from './api-error.js';
import type { SseEvent } from './sse-parser.js';
import { writeOrWait } from './stream-writer.js';

const sseHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * A chat stream written to the client in its wire format: OpenAI chunks (`data:` lines ending in
 * `[DONE]`) or Anthropic Messages events. Upstream streams and cached answers replayed as
 * streams both go through it.
 */
export class ClientStream {
  private encoder: AnthropicStreamEncoder | undefined;
  /** Events written and not yet sent. */
  private pending = '';

  constructor(
    private readonly res: ServerResponse,
    private readonly options: {
      wire: 'openai' | 'anthropic';
      /** OpenAI clients get the usage chunk only when they asked (`stream_options.include_usage`). */
      includeUsage: boolean;
      requestedModel: string;
      callId: string;
      /** The call's cost so far in USD (null: unknown), given with the usage as `x_sluice_cost_usd`. */
      cost: () => number | null;
    },
  ) {}

  open(headers: Record<string, string>): void {
    this.res.writeHead(200, { ...sseHeaders, ...headers });
    if (this.options.wire === 'anthropic')
      this.encoder = new AnthropicStreamEncoder(this.options.requestedModel, messageId(this.options.callId));
  }

  /**
   * Chunks decoded from one upstream event, or replayed. `event` is that upstream event when it
   * is already in the client's format: its bytes then pass through untouched. Nothing is sent
   * until `flush`: the events of one upstream read go out in one write, not one syscall each.
   */
  write(chunks: ChatCompletionChunk[], event?: SseEvent): void {
    const { encoder } = this;
    if (encoder) {
      for (const chunk of chunks) this.addEvents(encoder.encode(chunk));
      return;
    }
    // Same wire format: pass the upstream's bytes through untouched, except the usage chunk:
    // dropped when Sluice asked for it on its own account, else given the cost.
    if (event && chunks.length === 1 && !isUsageOnly(chunks[0] as ChatCompletionChunk)) {
      this.pending += event.raw.endsWith('\n\n') ? event.raw : `${event.raw}\n\n`;
      return;
    }
    for (const chunk of chunks) {
      if (!isUsageOnly(chunk)) this.pending += `data: ${JSON.stringify(chunk)}\n\n`;
      else if (this.options.includeUsage)
        this.pending += `data: ${JSON.stringify({ ...chunk, x_sluice_cost_usd: this.options.cost() })}\n\n`;
    }
  }

  /** Sends what was written since the last flush; a returned promise means the client is slow. */
  flush(): Promise<void> | undefined {
    if (!this.pending) return undefined;
    const text = this.pending;
    this.pending = '';
    return writeOrWait(this.res, text);
  }

  end(): void {
    if (this.encoder) this.addEvents(this.encoder.finish({ x_sluice_cost_usd: this.options.cost() }));
    else this.pending += 'data: [DONE]\n\n';
    this.finish();
  }

  /** The stream broke after it was committed. */
  fail(error: ApiError): void {
    if (this.encoder) {
      this.pending += `event: error\ndata: ${JSON.stringify(anthropicErrorBody(error))}\n\n`;
    } else this.pending += `data: ${JSON.stringify(openAIErrorBody(error))}\n\n`;
    this.finish();
  }

  /** The last events and the end of the response, in one write. */
  private finish(): void {
    const text = this.pending;
    this.pending = '';
    if (this.res.destroyed || this.res.writableEnded) return;
    this.res.end(text);
  }

  private addEvents(events: AnthropicEvent[]): void {
    for (const e of events) this.pending += `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
  }
}

function isUsageOnly(chunk: ChatCompletionChunk): boolean {
  return chunk.choices.length === 0 && chunk.usage !== undefined && chunk.usage !== null;
}
