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
 * streams both go through it. A returned promise means the client is slow: wait before writing more.
 */
export class ClientStream {
  private encoder: AnthropicStreamEncoder | undefined;

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
   * is already in the client's format: its bytes then pass through untouched.
   */
  write(chunks: ChatCompletionChunk[], event?: SseEvent): Promise<void> | undefined {
    const { encoder } = this;
    if (encoder) {
      let wait: Promise<void> | undefined;
      for (const chunk of chunks) wait = this.writeEvents(encoder.encode(chunk)) ?? wait;
      return wait;
    }
    // Same wire format: pass the upstream's bytes through untouched, except the usage chunk:
    // dropped when Sluice asked for it on its own account, else given the cost.
    if (event && chunks.length === 1 && !isUsageOnly(chunks[0] as ChatCompletionChunk))
      return writeOrWait(this.res, event.raw.endsWith('\n\n') ? event.raw : `${event.raw}\n\n`);
    let text = '';
    for (const chunk of chunks) {
      if (!isUsageOnly(chunk)) text += `data: ${JSON.stringify(chunk)}\n\n`;
      else if (this.options.includeUsage)
        text += `data: ${JSON.stringify({ ...chunk, x_sluice_cost_usd: this.options.cost() })}\n\n`;
    }
    return text ? writeOrWait(this.res, text) : undefined;
  }

  end(): void {
    if (this.encoder) this.writeEvents(this.encoder.finish({ x_sluice_cost_usd: this.options.cost() }));
    else writeOrWait(this.res, 'data: [DONE]\n\n');
    this.res.end();
  }

  /** The stream broke after it was committed. */
  fail(error: ApiError): void {
    if (this.encoder) {
      writeOrWait(this.res, `event: error\ndata: ${JSON.stringify(anthropicErrorBody(error))}\n\n`);
    } else writeOrWait(this.res, `data: ${JSON.stringify(openAIErrorBody(error))}\n\n`);
    this.res.end();
  }

  private writeEvents(events: AnthropicEvent[]): Promise<void> | undefined {
    let wait: Promise<void> | undefined;
    for (const e of events)
      wait = writeOrWait(this.res, `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`) ?? wait;
    return wait;
  }
}

function isUsageOnly(chunk: ChatCompletionChunk): boolean {
  return chunk.choices.length === 0 && chunk.usage !== undefined && chunk.usage !== null;
}
