import { connect } from 'node:net';
import { freePort } from './ports.js';
import { findBinary, type RunningServer, startInTempDir, startProcess } from './process.js';

type Reply = { value: string | null } | { error: string };

/** Parses one RESP reply of the simple kinds (status, error, integer, bulk); undefined while incomplete. */
function parseReply(data: Buffer): Reply | undefined {
  const lineEnd = data.indexOf('\r\n');
  if (lineEnd === -1) return undefined;
  const line = data.subarray(1, lineEnd).toString('utf8');
  switch (String.fromCharCode(data[0]!)) {
    case '+':
    case ':':
      return { value: line };
    case '-':
      return { error: line };
    case '$': {
      const length = Number(line);
      if (length === -1) return { value: null };
      const start = lineEnd + 2;
      if (data.length < start + length + 2) return undefined;
      return { value: data.subarray(start, start + length).toString('utf8') };
    }
    default:
      return { error: `unsupported RESP reply: ${data.toString('utf8')}` };
  }
}

/** Sends one command as raw RESP on a fresh connection; enough for probes and tests without a client library. */
export function redisCommand(port: number, ...args: string[]): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(2_000, () => socket.destroy(new Error('redis did not answer within 2 s')));
    let received = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const reply = parseReply(received);
      if (reply === undefined) return;
      socket.end();
      if ('error' in reply) reject(new Error(reply.error));
      else resolve(reply.value);
    });
    socket.once('error', reject);
    // No-op once a reply has settled the promise.
    socket.once('close', () => reject(new Error('redis closed the connection without a reply')));
    const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
    socket.write(`*${args.length}\r\n${parts.join('')}`);
  });
}

/** A throwaway Redis: no persistence, loopback only, its own port and temp dir. */
export async function startRedis(): Promise<RunningServer> {
  const binary = findBinary('redis-server', ['/usr/sbin', '/usr/local/bin']);
  return startInTempDir('redis', async (dir) => {
    const port = await freePort();
    const child = await startProcess({
      name: 'redis-server',
      command: binary,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      cwd: dir,
      ready: async () => (await redisCommand(port, 'PING')) === 'PONG',
    });
    return { url: `redis://127.0.0.1:${port}`, port, child };
  });
}
