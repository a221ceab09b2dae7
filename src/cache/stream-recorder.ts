import type {
  ChatCompletion,
  ChatCompletionChunk,
  FinishReason,
  ToolCall,
  Usage,
} from '../providers/canonical.js';

interface ChoiceSoFar {
  content: string;
  /** A content field was sent, even an empty one: `content` is then "" rather than null. */
  hadContent: boolean;
  refusal: string;
  /** String fields some providers add to deltas (e.g. `reasoning_content`), joined like content. */
  extras: Map<string, string>;
  toolCalls: Map<number, ToolCall>;
  finish: FinishReason | null;
  stopReason?: string | number | null;
}

/**
 * Reassembles a stream's canonical chunks into the completion they amount to, so a streamed
 * answer can be cached and later served whole or streamed again. Content, refusals and tool call
 * arguments are the concatenation of their deltas, so they are byte for byte what the client got.
 */
export class StreamRecorder {
  private id = '';
  private created = 0;
  private model = '';
  private fingerprint: string | null | undefined;
  private usage: Usage | undefined;
  private readonly choices = new Map<number, ChoiceSoFar>();

  add(chunk: ChatCompletionChunk): void {
    if (!this.id) {
      this.id = chunk.id;
      this.created = chunk.created;
      this.model = chunk.model;
    }
    if (chunk.system_fingerprint !== undefined) this.fingerprint = chunk.system_fingerprint;
    if (chunk.usage) this.usage = chunk.usage;
    for (const choice of chunk.choices) {
      const so = this.choice(choice.index);
      const { role: _role, content, refusal, tool_calls, ...extras } = choice.delta;
      if (typeof content === 'string') {
        so.content += content;
        so.hadContent = true;
      }
      if (typeof refusal === 'string') so.refusal += refusal;
      for (const [name, value] of Object.entries(extras)) {
        if (typeof value === 'string') so.extras.set(name, (so.extras.get(name) ?? '') + value);
      }
      for (const delta of tool_calls ?? []) {
        let call = so.toolCalls.get(delta.index);
        if (!call) {
          call = { id: '', type: 'function', function: { name: '', arguments: '' } };
          so.toolCalls.set(delta.index, call);
        }
        if (delta.id) call.id = delta.id;
        // Names come whole (some providers repeat them in every delta); arguments come in pieces.
        if (delta.function?.name) call.function.name = delta.function.name;
        if (delta.function?.arguments) call.function.arguments += delta.function.arguments;
      }
      if (choice.finish_reason) so.finish = choice.finish_reason;
      if (choice.stop_reason !== undefined && choice.stop_reason !== null) so.stopReason = choice.stop_reason;
    }
  }

  /** The whole completion; undefined until some choice has finished. */
  completion(): ChatCompletion | undefined {
    const choices = [...this.choices.entries()].sort(([a], [b]) => a - b);
    if (choices.length === 0 || choices.some(([, c]) => c.finish === null)) return undefined;
    return {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      choices: choices.map(([index, c]) => {
        const toolCalls = [...c.toolCalls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
        return {
          index,
          message: {
            role: 'assistant',
            ...Object.fromEntries(c.extras),
            content: c.content !== '' || (c.hadContent && toolCalls.length === 0) ? c.content : null,
            refusal: c.refusal || null,
            ...(toolCalls.length > 0 && { tool_calls: toolCalls }),
          },
          finish_reason: c.finish,
          ...(c.stopReason !== undefined && { stop_reason: c.stopReason }),
        };
      }),
      ...(this.usage && { usage: this.usage }),
      ...(this.fingerprint !== undefined && { system_fingerprint: this.fingerprint }),
    };
  }

  private choice(index: number): ChoiceSoFar {
    let choice = this.choices.get(index);
    if (!choice) {
      choice = {
        content: '',
        hadContent: false,
        refusal: '',
        extras: new Map(),
        toolCalls: new Map(),
        finish: null,
      };
      this.choices.set(index, choice);
    }
    return choice;
  }
}
