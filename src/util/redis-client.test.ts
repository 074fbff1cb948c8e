/** Against the test's own redis-server on a free port, stopped and restarted (never the shared Redis). */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startRedisServer, type OwnRedis } from '../../test/support/redis-server.js';
import { createRedisConnection, RedisUnavailableError, type RedisConnection } from './redis-client.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function recordingLogger() {
  const lines: { level: string; object: object; message: string }[] = [];
  return {
    lines,
    info: (object: object, message: string) => lines.push({ level: 'info', object, message }),
    warn: (object: object, message: string) => lines.push({ level: 'warn', object, message }),
  };
}

let redis: OwnRedis | undefined;
let connection: RedisConnection | undefined;

afterEach(async () => {
  connection?.client.disconnect();
  await redis?.kill();
  connection = undefined;
  redis = undefined;
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = performance.now();
  while (!condition() && performance.now() - started < timeoutMs) await sleep(10);
}

describe('createRedisConnection', () => {
  it('waits for the first connection, fails at once while down, logs one line per change, and is back within ~the retry interval', async () => {
    const port = await freePort();
    redis = await startRedisServer(port);
    const logger = recordingLogger();
    connection = createRedisConnection({ url: `redis://127.0.0.1:${port}`, purpose: 'tests', logger, retryIntervalMs: 100 });
    // Right after creation: not refused, the first connection is awaited.
    await connection.available();
    expect(await connection.client.ping()).toBe('PONG');

    await redis.kill();
    await until(() => connection!.state === 'down');
    await sleep(500); // several reconnection attempts
    const started = performance.now();
    await expect(connection.available()).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(connection.client.ping()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(50);

    redis = await startRedisServer(port);
    const back = performance.now();
    await until(() => connection!.state === 'up');
    expect(connection.state).toBe('up');
    expect(performance.now() - back).toBeLessThan(1000);
    await connection.available();
    expect(logger.lines.map((line) => [line.level, (line.object as { redis: string }).redis])).toEqual([
      ['warn', 'down'],
      ['info', 'up'],
    ]);
  });

  it('is refused once the first connection failed (nothing listens)', async () => {
    const port = await freePort();
    const logger = recordingLogger();
    connection = createRedisConnection({ url: `redis://127.0.0.1:${port}`, purpose: 'tests', logger });
    await expect(connection.available()).rejects.toThrow(/Redis is unreachable \(.*ECONNREFUSED/);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]!.message).toBe('Redis (tests) cannot be reached');
  });
});
