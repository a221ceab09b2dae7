import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';

const maxBodyBytes = 4096;
let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimServer({
    config: {
      maxBodyBytes,
      models: [{ name: 'sim-quick', prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 1 }],
    },
  });
});

afterAll(() => sim.close());

interface Sent {
  status: number;
  contentType: string | null;
  body: unknown;
}

async function send(path: string, body: string, contentType = 'application/json'): Promise<Sent> {
  const response = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: JSON.parse(text),
  };
}

const chat = (body: unknown, contentType?: string) =>
  send('/v1/chat/completions', typeof body === 'string' ? body : JSON.stringify(body), contentType);
const messages = (body: unknown, contentType?: string) =>
  send('/v1/messages', typeof body === 'string' ? body : JSON.stringify(body), contentType);

const user = (content: unknown) => ({ role: 'user', content });
const goodChat = { model: 'sim-quick', max_tokens: 4, messages: [user('hello')] };
const goodMessages = { model: 'sim-quick', max_tokens: 4, messages: [user('hello')] };

/** The OpenAI error body, exactly: four fields, nothing else. */
function openAIError(param: string | null, code: string | null, message: string | RegExp) {
  return {
    error: {
      message:
        typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message),
      type: 'invalid_request_error',
      param,
      code,
    },
  };
}

function anthropicError(type: string, message: string | RegExp) {
  return {
    type: 'error',
    error: {
      type,
      message:
        typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message),
    },
  };
}

function expectShape(sent: Sent, status: number, body: unknown): void {
  expect({ status: sent.status, body: sent.body }).toStrictEqual({ status, body });
  expect(sent.contentType).toMatch(/^application\/json/);
}

describe('the simulator rejects malformed OpenAI chat requests with a precise 400', () => {
  it('names a body that is not valid JSON', async () => {
    expectShape(
      await chat('{"model": "sim-quick", '),
      400,
      openAIError(null, 'invalid_json', 'could not parse the JSON body'),
    );
  });

  it('names an empty body', async () => {
    expectShape(await chat(''), 400, openAIError(null, 'invalid_body', 'empty'));
  });

  it.each([
    ['an array', '[{"model":"sim-quick"}]'],
    ['a string', '"hello"'],
    ['a number', '42'],
    ['null', 'null'],
  ])('says the body must be a JSON object when it is %s', async (_, body) => {
    expectShape(await chat(body), 400, openAIError(null, 'invalid_body', 'must be a JSON object'));
  });

  it.each([
    ['model', { messages: [user('hi')] }],
    ['messages', { model: 'sim-quick' }],
  ])('points at the missing required parameter %s', async (param, body) => {
    expectShape(
      await chat(body),
      400,
      openAIError(param, 'missing_required_parameter', `Missing required parameter: '${param}'`),
    );
  });

  it('points at content given as a number', async () => {
    expectShape(
      await chat({ ...goodChat, messages: [user(5)] }),
      400,
      openAIError('messages[0].content', 'invalid_type', /'messages\[0\]\.content'.*got an integer/),
    );
  });

  it('points at n given as a string', async () => {
    expectShape(
      await chat({ ...goodChat, n: '2' }),
      400,
      openAIError('n', 'invalid_type', /Invalid type for 'n'.*got a string/),
    );
  });

  it('points at messages that are not an array', async () => {
    expectShape(
      await chat({ ...goodChat, messages: 'hello' }),
      400,
      openAIError('messages', 'invalid_type', /'messages': expected an array, but got a string/),
    );
  });

  it('points at an empty messages array', async () => {
    expectShape(
      await chat({ ...goodChat, messages: [] }),
      400,
      openAIError('messages', 'empty_array', /at least 1 item/),
    );
  });

  it('points at max_tokens of 0', async () => {
    expectShape(
      await chat({ ...goodChat, max_tokens: 0 }),
      400,
      openAIError('max_tokens', 'integer_below_min_value', /'max_tokens': 0 is less than the minimum of 1/),
    );
  });

  it('points at the role of a message with an unknown role', async () => {
    expectShape(
      await chat({ ...goodChat, messages: [user('hi'), { role: 'wizard', content: 'abracadabra' }] }),
      400,
      openAIError('messages[1].role', 'invalid_value', "'messages[1].role'"),
    );
  });

  it('points at a tool_choice that names a function missing from tools', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const toolChoice = { type: 'function', function: { name: 'get_time' } };
    expectShape(
      await chat({ ...goodChat, tools, tool_choice: toolChoice }),
      400,
      openAIError('tool_choice', 'invalid_value', "the function 'get_time' is not among the request's tools"),
    );
  });

  it('requires the word json in the messages for a json_object response format', async () => {
    expectShape(
      await chat({ ...goodChat, response_format: { type: 'json_object' } }),
      400,
      openAIError('messages', null, "must contain the word 'json'"),
    );
  });
});

describe('the simulator rejects requests it cannot read at the HTTP level', () => {
  it('answers 413 to a body larger than maxBodyBytes', async () => {
    const sent = await chat({ ...goodChat, messages: [user('x'.repeat(maxBodyBytes))] });
    expectShape(sent, 413, openAIError(null, 'request_too_large', 'too large'));
  });

  it.each(['text/plain', 'application/xml', 'application/x-www-form-urlencoded'])(
    'answers 415 to a JSON body sent as %s',
    async (contentType) => {
      expectShape(
        await chat(goodChat, contentType),
        415,
        openAIError(null, 'unsupported_media_type', 'application/json'),
      );
    },
  );

  it('answers 415 to a body without a content type', async () => {
    // fetch labels a string body text/plain itself; bytes go without a content-type header.
    const response = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      body: new TextEncoder().encode(JSON.stringify(goodChat)),
    });
    expect(response.status).toBe(415);
    expect(await response.json()).toStrictEqual(
      openAIError(null, 'unsupported_media_type', 'application/json'),
    );
  });

  it('answers 404 naming an unknown URL', async () => {
    expectShape(
      await send('/v1/chat/complete', JSON.stringify(goodChat)),
      404,
      openAIError(null, 'unknown_url', 'POST /v1/chat/complete'),
    );
  });

  it('answers 404 to a method the route does not serve', async () => {
    const response = await fetch(`${sim.url}/v1/chat/completions`);
    expect(response.status).toBe(404);
    expect(await response.json()).toStrictEqual(openAIError(null, 'unknown_url', 'GET /v1/chat/completions'));
  });
});

describe('the simulator treats special tokens in client text as plain text', () => {
  it('accepts <|endoftext|> and friends and counts them as prompt tokens', async () => {
    const plain = await chat({ ...goodChat, messages: [user('a b')] });
    const special = await chat({ ...goodChat, messages: [user('a <|endoftext|> b <|im_start|>')] });
    expect(plain.status).toBe(200);
    expect(special.status).toBe(200);
    const tokens = (sent: Sent) => (sent.body as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    // Each marker is several ordinary tokens ("<", "|", "endo", ...), never one special token.
    expect(tokens(special)).toBeGreaterThan(tokens(plain) + 4);
  });

  it('echoes a special token back as text', async () => {
    const sent = await chat({
      ...goodChat,
      max_tokens: 32,
      messages: [user('Repeat after me: <|endoftext|>')],
    });
    expect(sent.status).toBe(200);
    const body = sent.body as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0]?.message.content).toBe('<|endoftext|>');
  });

  it('accepts and counts them on /v1/messages too', async () => {
    const plain = await messages({ ...goodMessages, messages: [user('a b')] });
    const special = await messages({ ...goodMessages, messages: [user('a <|endoftext|> b')] });
    expect(plain.status).toBe(200);
    expect(special.status).toBe(200);
    const tokens = (sent: Sent) => (sent.body as { usage: { input_tokens: number } }).usage.input_tokens;
    expect(tokens(special)).toBeGreaterThan(tokens(plain) + 2);
  });
});

describe('the simulator answers bad Anthropic requests in the Anthropic error shape', () => {
  const invalid = (message: string | RegExp) => anthropicError('invalid_request_error', message);

  it('names a body that is not valid JSON', async () => {
    expectShape(await messages('{"model": '), 400, invalid('could not parse the JSON body'));
  });

  it('names an empty body', async () => {
    expectShape(await messages(''), 400, invalid('empty'));
  });

  it.each([
    ['an array', '[]'],
    ['a string', '"hello"'],
  ])('says the body must be a JSON object when it is %s', async (_, body) => {
    expectShape(await messages(body), 400, invalid('must be a JSON object'));
  });

  it.each([
    ['model', { max_tokens: 4, messages: [user('hi')] }],
    ['max_tokens', { model: 'sim-quick', messages: [user('hi')] }],
    ['messages', { model: 'sim-quick', max_tokens: 4 }],
  ])('names the missing field %s', async (field, body) => {
    expectShape(await messages(body), 400, invalid(`Missing required parameter: '${field}'`));
  });

  it('names content given as a number', async () => {
    expectShape(
      await messages({ ...goodMessages, messages: [user(5)] }),
      400,
      invalid(/'messages\[0\]\.content'.*got an integer/),
    );
  });

  it('names messages that are not an array', async () => {
    expectShape(
      await messages({ ...goodMessages, messages: { role: 'user' } }),
      400,
      invalid(/'messages': expected an array, but got an object/),
    );
  });

  it('names an empty messages list', async () => {
    expectShape(
      await messages({ ...goodMessages, messages: [] }),
      400,
      invalid('messages: at least one message is required'),
    );
  });

  it('names max_tokens of 0', async () => {
    expectShape(
      await messages({ ...goodMessages, max_tokens: 0 }),
      400,
      invalid(/'max_tokens': 0 is less than the minimum of 1/),
    );
  });

  it('names a role other than user or assistant', async () => {
    expectShape(
      await messages({ ...goodMessages, messages: [{ role: 'system', content: 'be brief' }] }),
      400,
      invalid(/'messages\[0\]\.role': "system"\. Supported values are: 'user', and 'assistant'/),
    );
  });

  it('names a tool_choice tool missing from tools', async () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object' } }];
    expectShape(
      await messages({ ...goodMessages, tools, tool_choice: { type: 'tool', name: 'get_time' } }),
      400,
      invalid("tool_choice: the tool 'get_time' is not among the request's tools"),
    );
  });

  it('answers 413 request_too_large to a body larger than maxBodyBytes', async () => {
    expectShape(
      await messages({ ...goodMessages, messages: [user('x'.repeat(maxBodyBytes))] }),
      413,
      anthropicError('request_too_large', 'too large'),
    );
  });

  it('answers 415 to a body that is not sent as JSON', async () => {
    expectShape(await messages(goodMessages, 'text/plain'), 415, invalid('application/json'));
  });

  it('answers 404 not_found_error to an unknown URL under /v1/messages', async () => {
    expectShape(
      await send('/v1/messages/batches/nope', JSON.stringify(goodMessages)),
      404,
      anthropicError('not_found_error', 'POST /v1/messages/batches/nope'),
    );
  });
});

describe('after every bad request', () => {
  it('still serves good OpenAI and Anthropic requests, with nothing stuck or rejected by a model', async () => {
    const openai = await chat(goodChat);
    expect(openai.status).toBe(200);
    expect(openai.body).toMatchObject({ object: 'chat.completion', choices: [{ finish_reason: 'length' }] });
    const anthropic = await messages(goodMessages);
    expect(anthropic.status).toBe(200);
    expect(anthropic.body).toMatchObject({ type: 'message', stop_reason: 'max_tokens' });
    const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as Record<string, number>;
    expect(stats).toMatchObject({ inFlight: 0, queued: 0, rejected: 0, faulted: 0 });
  });
});
