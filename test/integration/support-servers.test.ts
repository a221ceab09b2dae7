import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { findBinary, MissingBinaryError } from '../support/process.js';
import {
  postgresBinDir,
  type RunningServer,
  redisCommand,
  startClickHouse,
  startPostgres,
  startRedis,
} from '../support/servers.js';

const run = promisify(execFile);

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts a server that is stopped when the test ends, whatever the outcome. */
async function started(start: () => Promise<RunningServer>): Promise<RunningServer> {
  const server = await start();
  onTestFinished(() => server.stop());
  return server;
}

async function expectGoneAfterStop(server: RunningServer): Promise<void> {
  expect(await acceptsConnections(server.port)).toBe(true);
  expect(existsSync(server.dir)).toBe(true);
  await server.stop();
  expect(await acceptsConnections(server.port)).toBe(false);
  expect(existsSync(server.dir)).toBe(false);
}

describe('findBinary', () => {
  it('tells which apt package to install when a binary is missing', () => {
    expect(() => findBinary('no-such-server', [], 'no-such-package')).toThrowError(MissingBinaryError);
    expect(() => findBinary('no-such-server', [], 'no-such-package')).toThrowError(
      'no-such-server is not installed: run `apt-get install -y no-such-package`',
    );
  });
});

describe('startRedis', () => {
  it('runs a Redis on a free loopback port that stores and returns values', async () => {
    const redis = await started(startRedis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await redisCommand(redis.port, 'SET', 'greeting', 'hello')).toBe('OK');
    expect(await redisCommand(redis.port, 'GET', 'greeting')).toBe('hello');
    expect(await redisCommand(redis.port, 'GET', 'missing')).toBeNull();
  });

  it('closes its port and removes its temp directory when stopped', async () => {
    await expectGoneAfterStop(await started(startRedis));
  });
});

describe('startPostgres', () => {
  it('runs a PostgreSQL that psql can query as the postgres user over loopback TCP', async () => {
    const postgres = await started(startPostgres);
    expect(postgres.url).toBe(`postgres://postgres@127.0.0.1:${postgres.port}/postgres`);
    const psql = join(postgresBinDir(), 'psql');
    const args = ['-h', '127.0.0.1', '-p', String(postgres.port), '-U', 'postgres', '-At', '-c', 'select 1'];
    const { stdout } = await run(psql, args);
    expect(stdout.trim()).toBe('1');
  });

  it('closes its port and removes its temp directory when stopped', async () => {
    await expectGoneAfterStop(await started(startPostgres));
  });
});

describe('startClickHouse', () => {
  it('runs a ClickHouse that answers SQL over HTTP', async () => {
    const clickhouse = await started(startClickHouse);
    expect(clickhouse.url).toBe(`http://127.0.0.1:${clickhouse.port}`);
    const response = await fetch(clickhouse.url, { method: 'POST', body: 'SELECT 1+1' });
    expect(response.status).toBe(200);
    expect((await response.text()).trim()).toBe('2');
  });

  it('closes its port and removes its temp directory when stopped', async () => {
    await expectGoneAfterStop(await started(startClickHouse));
  });
});
