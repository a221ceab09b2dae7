export { startClickHouse } from './clickhouse.js';
export { postgresBinDir, startPostgres } from './postgres.js';
export type { RunningServer } from './process.js';
export { MissingBinaryError } from './process.js';
export { redisCommand, startRedis } from './redis.js';
export { serverForSuite } from './suite-server.js';
